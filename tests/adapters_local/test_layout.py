"""Issue 14 acceptance 5: ``adapters_local`` reads as its architecture, no module is over 500
lines, and no import runs from a lower layer back up (training, preference, export and compose
never import serving; the data and model layers import neither)."""

from __future__ import annotations

import ast
from pathlib import Path

import adapters_local

ROOT = Path(adapters_local.__file__).parent
FOLDERS = {
    *("bottleneck", "compose", "data", "export", "lora"),
    *("models", "preference", "serving", "training"),
}
# package -> packages of adapters_local it must never import
FORBIDDEN = {
    "data": {"models", "training", "serving", "export", "compose", "lora", "bottleneck"},
    "models": {"training", "serving", "export", "compose"},
    "lora": {"training", "serving", "export", "compose"},
    "bottleneck": {"training", "serving", "export", "compose"},
    "training": {"serving", "compose"},
    "preference": {"serving", "compose"},
    "export": {"serving", "compose"},
    "compose": {"serving", "training", "export"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m.split(".")[1] for m in found if m.startswith("adapters_local.") and "." in m}


def test_the_top_level_is_the_architecture() -> None:
    entries = {p.name for p in ROOT.iterdir() if not p.name.startswith("__")}
    assert {p for p in entries if (ROOT / p).is_dir()} == FOLDERS
    assert {p for p in entries if (ROOT / p).is_file()} == {"cli.py"}


def test_no_module_is_over_500_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in ROOT.rglob("*.py")}
    assert max(sizes.values()) <= 500, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_no_import_runs_from_a_lower_layer_back_up() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports adapters_local.{package}"
        for layer, banned in FORBIDDEN.items()
        for path in (ROOT / layer).rglob("*.py")
        for package in _imports(path) & banned
    ]
    assert not wrong, wrong
