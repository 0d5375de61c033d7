"""Start-up checks of ``strata.yaml``'s ``local`` section, before any model loads.

A missing base folder or adapter folder used to fail the whole base on the first request (the
``default`` alias then answered 503 forever). Now each problem is found at start and only the
targets it touches are marked unavailable: the base still loads without the missing adapter, the
log names file, key and reason, and ``/readyz`` lists the unavailable targets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from adapters_local.serving.compose import CompositionError, Stack, WeightedLora, parse_composition

if TYPE_CHECKING:
    from gateway.config import LocalBase

log = logging.getLogger("strata.config")

BUILTIN = "builtin"


def check_local_bases(config_path: Path | None, bases: dict[str, LocalBase]) -> dict[str, str]:
    """Drop unusable adapters from ``bases`` (in place); returns target → reason for every
    local target that cannot be served. Reasons name the config key, never a file's contents."""
    where = f"{config_path}: " if config_path else ""
    unavailable: dict[str, str] = {}
    for name, base in bases.items():
        key = f"{where}local.bases.{name}"
        problem = _base_problem(base.path)
        if problem:
            unavailable[f"local:{name}"] = f"{key}.path: {problem}"
            continue
        usable: dict[str, str] = {}
        for adapter, value in base.adapters.items():
            problem = _adapter_problem(value, usable)
            if problem:
                unavailable[f"local:{name}@{adapter}"] = f"{key}.adapters.{adapter}: {problem}"
            else:
                usable[adapter] = value
        base.adapters = usable
    for target, reason in unavailable.items():
        log.warning("local target %s is unavailable: %s", target, reason)
    return unavailable


def _base_problem(path: str) -> str | None:
    if path == BUILTIN:
        return None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return f"model folder {folder.resolve()} does not exist"
    if not (folder / "config.json").is_file():
        return f"{folder.resolve()} is not a Hugging Face model folder (no config.json)"
    return None


def _adapter_problem(value: str, usable: dict[str, str]) -> str | None:
    try:
        composition = parse_composition(value)
    except CompositionError as exc:
        return str(exc)
    if isinstance(composition, WeightedLora):
        missing = [n for n, _ in composition.weights if n not in usable]
    elif isinstance(composition, Stack):
        missing = [n for n in (composition.lora, composition.bottleneck) if n not in usable]
    else:
        folder = Path(value).expanduser()
        if not folder.is_dir():
            return f"adapter folder {folder.resolve()} does not exist (train it first)"
        return None
    if missing:
        return f"composes adapters that are not available: {', '.join(missing)}"
    return None
