"""Issue 7, item 16 and acceptance 4: the README's newcomer path, run as written.

The README's setup snippets (the curl call and the Python SDK snippet) run against a gateway
serving the built-in model with a generated dev key in ``./.strata``, from that directory, as a
new user would after ``make run``. The only change made to them is the port (8080 → a free one).
The README's ``strata.yaml`` examples are loaded by ``test_local_support``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters_local.serving.generation import InferenceEngine
from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.conftest import loader_of
from tests.gateway.harness import serve

README = Path(__file__).parents[2] / "README.md"


def blocks(language: str) -> list[str]:
    setup = README.read_text(encoding="utf-8").split("## Configuration")[0]
    return re.findall(rf"```{language}\n(.*?)```", setup, flags=re.DOTALL)


@pytest.fixture(scope="module")
def newcomer(
    tmp_path_factory: pytest.TempPathFactory, builtin_engine: InferenceEngine
) -> Iterator[tuple[Path, int]]:
    """A directory with ``.strata/dev-key`` (generated), and the port its gateway listens on."""
    here = tmp_path_factory.mktemp("newcomer")
    settings = Settings(home=here / ".strata")
    with serve(create_app(settings, local_loader=loader_of(builtin_engine))) as url:
        yield here, int(url.rsplit(":", 1)[1])


def on_port(snippet: str, port: int) -> str:
    assert "8080" in snippet
    return snippet.replace("8080", str(port))


def test_readme_has_the_snippets() -> None:
    assert [b for b in blocks("sh") if "curl" in b], "the curl example is gone"
    assert len(blocks("python")) == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_example_works(newcomer: tuple[Path, int]) -> None:
    here, port = newcomer
    (snippet,) = [b for b in blocks("sh") if "curl" in b]
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", on_port(snippet, port)],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["choices"][0]["message"]["content"] == "HELLO"


@pytest.mark.slow
def test_the_python_example_works(newcomer: tuple[Path, int]) -> None:
    here, port = newcomer
    (snippet,) = blocks("python")
    # sys.executable is .venv/bin/python, the interpreter the README names.
    proc = subprocess.run(
        [sys.executable, "-c", on_port(snippet, port)],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cba", "abc"]


def test_make_run_takes_a_port() -> None:
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed-stamp", "run", "PORT=9123"],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert "strata serve --port 9123" in dry.stdout
    assert "--progress-bar on" in makefile and " -q -c constraints.txt" not in makefile
