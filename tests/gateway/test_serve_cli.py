"""Acceptance 1 (in-suite part): `strata serve` answers on localhost with no AWS credentials."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

STRATA = [sys.executable, "-c", "from gateway.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATA_"))}
    env["STRATA_HOME"] = str(home)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


@pytest.mark.slow
def test_serve_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*STRATA, "serve", "--port", str(port)],
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "strata serve exited early"
            time.sleep(0.2)
        else:
            raise AssertionError("gateway never became ready")
        key = (tmp_path / "dev-key").read_text().strip()
        r = httpx.post(
            url + "/v1/chat/completions",
            timeout=120,
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "default",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "copy: abc"}],
            },
        )
        assert r.status_code == 200
        assert r.json()["usage"]["prompt_tokens"] > 0
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught.
    assert proc.returncode in (0, -15)
    assert "Application shutdown complete" in output
    # The generated key is printed once on the terminal, never through the log lines.
    log_lines = [line for line in output.splitlines() if " INFO " in line or " WARNING " in line]
    assert key in output
    assert not any(key in line for line in log_lines)


def test_bad_config_exits_with_file_key_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "strata.yaml"
    config.write_text("aliases:\n  x: openai:gpt\n")
    proc = subprocess.run(
        [*STRATA, "serve", "--config", str(config)],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"{config}: aliases.x: invalid target 'openai:gpt'" in proc.stderr


def test_help_lists_commands() -> None:
    proc = subprocess.run([*STRATA, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for command in ("serve", "customize", "variants", "train", "export"):
        assert command in proc.stdout
