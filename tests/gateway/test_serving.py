"""Issue 7, items 10, 15 and 16: slow clients, the models routes, `strata serve`'s edges."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from customize.variants.store import Variant, VariantStore
from gateway.app import create_app
from gateway.drain_server import DrainingServer
from gateway.serving import bind, server
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import BEDROCK_MODEL, bedrock_settings
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.test_serve_cli import STRATA, clean_env, free_port

PARTIAL_HEADERS = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture
def guarded(tmp_path: Path, wire: BedrockWireServer, aws_credentials: None) -> Iterator[str]:
    """The gateway as `strata serve` runs it (serving.server), with short client deadlines."""
    settings = bedrock_settings(
        tmp_path, wire, header_timeout_s=0.5, body_timeout_s=0.5, max_waiting_connections=4
    )
    with in_thread(settings) as (_thread, port):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[tuple[DrainingServer, threading.Thread, int]]:
    """serving.server run in a thread until the block ends (``should_exit`` set from this
    thread, as embedders do); the thread has stopped after it."""
    sock = bind("127.0.0.1", 0)
    uv = server(create_app(settings), settings)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not uv.started:
            assert thread.is_alive()
            time.sleep(0.02)
        yield uv, thread, sock.getsockname()[1]
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()


@contextlib.contextmanager
def in_thread(settings: Settings) -> Iterator[tuple[threading.Thread, int]]:
    with running(settings) as (_uv, thread, port):
        yield thread, port


def closed_by_server(conn: socket.socket, within: float = 30.0) -> bool:
    conn.settimeout(within)
    try:
        return conn.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_clients_that_never_finish_their_headers_are_closed(guarded: str) -> None:
    """Item 10: 100 such connections stayed open 40 s+; now each is closed at its deadline, and
    past four waiting ones new connections are closed at once."""
    port = int(guarded.rsplit(":", 1)[1])
    slow = []
    for _ in range(12):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(PARTIAL_HEADERS)
        slow.append(conn)
    try:
        assert all(closed_by_server(c) for c in slow)
    finally:
        for c in slow:
            c.close()
    # The gateway itself is fine afterwards.
    assert httpx.get(guarded + "/healthz").status_code == 200


def test_a_body_that_never_arrives_is_408(guarded: str) -> None:
    port = int(guarded.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TEST_KEY}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"model":'
        )
        conn.settimeout(30)
        assert conn.recv(1024).startswith(b"HTTP/1.1 408")


def test_a_request_finished_in_time_is_served(guarded: str) -> None:
    r = httpx.post(
        guarded + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        json={"model": "haiku", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200


# Item 15: the models routes ------------------------------------------------------------------


def test_models_list_and_retrieve(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    settings = bedrock_settings(tmp_path, wire)
    settings.home.mkdir(parents=True)
    VariantStore(settings.home / "variants.sqlite").add(
        Variant("support-v2", f"bedrock:{BEDROCK_MODEL}")
    )
    with serve(create_app(settings)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key=TEST_KEY, max_retries=0)
        ids = [m.id for m in client.models.list()]
        assert ids == ["default", "haiku", "variant:support-v2"]
        assert client.models.retrieve("haiku").id == "haiku"
        assert client.models.retrieve("variant:support-v2").id == "variant:support-v2"
        assert client.models.retrieve(f"bedrock:{BEDROCK_MODEL}").id == f"bedrock:{BEDROCK_MODEL}"
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-17")
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("variant:ghost")
        assert httpx.get(url + "/v1/models/haiku").status_code == 401


def test_state_directory_is_logged_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO)
    create_app(Settings(home=Path(".strata"), dev_key=TEST_KEY))
    assert f"state directory (dev key, variants): {tmp_path / '.strata'}" in caplog.text


# Items 15 and 16: `strata serve` -------------------------------------------------------------


def strata(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {**env, "COLUMNS": "200"}  # typer wraps its error box to the terminal's width
    return subprocess.run(
        [*STRATA, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_out_of_range_port_is_refused(tmp_path: Path) -> None:
    proc = strata("serve", "--port", "99999", env=clean_env(tmp_path))
    assert proc.returncode == 2
    assert "--port" in proc.stderr and "65535" in proc.stderr


@pytest.mark.parametrize(("name", "value"), [("STRATA_PORT", "eighty"), ("STRATA_PORT", "0")])
def test_a_bad_setting_is_one_line(tmp_path: Path, name: str, value: str) -> None:
    env = {**clean_env(tmp_path), name: value}
    proc = strata("serve", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"strata: {name}: "), proc.stderr


def test_a_busy_port_fails_before_anything_loads(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = strata("serve", "--port", str(port), env=clean_env(tmp_path))
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr  # that one line, nothing loaded
    assert not (tmp_path / "dev-key").exists()


def test_serve_help_lists_every_setting(tmp_path: Path) -> None:
    proc = strata("serve", "--help", env=clean_env(tmp_path))
    assert proc.returncode == 0
    for name in Settings.model_fields:
        assert f"STRATA_{name.upper()}" in proc.stdout


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"STRATA_{n.upper()}" not in readme]
    assert missing == []


BEDROCK_ONLY_PROBE = """
import sys
from pathlib import Path
from starlette.testclient import TestClient
from gateway.app import create_app
from gateway.drain_server import DrainingServer
from gateway.settings import Settings
config = Path(sys.argv[1])
config.write_text("aliases:\\n  haiku: bedrock:anthropic.claude-3-haiku-20240307-v1:0\\n")
app = create_app(Settings(home=config.parent, dev_key="sk-strata-probe", config=config))
with TestClient(app) as client:
    assert client.get("/readyz").json()["providers"]["local"] is True
print("torch imported:", "torch" in sys.modules)
"""


def test_a_bedrock_only_config_never_imports_torch(tmp_path: Path) -> None:
    """Item 15: the built-in `default` was preloaded, so torch and the model loaded (230 MiB)."""
    proc = subprocess.run(
        [sys.executable, "-c", BEDROCK_ONLY_PROBE, str(tmp_path / "strata.yaml")],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stdout


def test_free_port_helper_gives_a_bindable_port() -> None:
    bind("127.0.0.1", free_port()).close()


def test_a_server_run_in_a_thread_leaves_no_exit_timer_behind(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    """The drain's watchdog (os._exit after drain_s) outlived a stopped in-thread server and
    killed the test process 30 s later, mid-suite, with no summary."""
    with in_thread(bedrock_settings(tmp_path, wire)) as (thread, _port):
        pass
    assert not thread.is_alive()
    overdue = [
        t
        for t in threading.enumerate()
        if isinstance(t, threading.Timer) and getattr(t.function, "__name__", "") == "_overdue"
    ]
    assert overdue == []


def test_an_idle_server_wakes_once_a_second_and_stops_when_told(
    tmp_path: Path, wire: BedrockWireServer, aws_credentials: None
) -> None:
    """uvicorn's main loop woke every 0.1 s to look at should_exit (10 wake-ups a second of an
    idle gateway, paid on the cold path); now it wakes at each whole second for the Date header,
    and setting should_exit from another thread still stops the server (it wakes the loop)."""
    with running(bedrock_settings(tmp_path, wire)) as (uv, thread, port):
        before = uv.ticks
        time.sleep(1.0)  # ten of uvicorn's ticks; at most two whole seconds begin in it
        assert uv.ticks - before <= 2
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert answer.status_code == 200 and "date" in answer.headers
    assert not thread.is_alive()
