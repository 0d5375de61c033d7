"""/healthz says the process is up; /readyz waits for providers and the default model."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from adapters_local.serving.generation import InferenceEngine
from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.scripted_engine import ScriptedEngine, text_script


def test_readyz_waits_for_the_default_model(tmp_path: Path) -> None:
    release = threading.Event()
    engine = ScriptedEngine(text_script("ok"))

    def slow_loader(path: str, adapters: Mapping[str, str]) -> InferenceEngine:
        release.wait(60)
        return engine

    app = create_app(Settings(home=tmp_path, dev_key=TEST_KEY), local_loader=slow_loader)
    with serve(app) as url:
        assert httpx.get(url + "/healthz").json() == {"status": "ok"}
        starting = httpx.get(url + "/readyz")
        assert starting.status_code == 503
        assert starting.json()["providers"]["local"] is False
        release.set()
        for _ in range(100):
            ready = httpx.get(url + "/readyz")
            if ready.status_code == 200:
                break
            time.sleep(0.05)
        assert ready.status_code == 200
        # No AWS credentials in the test environment: said so, rather than "bedrock: true".
        assert ready.json() == {
            "status": "ready",
            "providers": {"local": True, "bedrock": "no credentials"},
            "local": {"local:builtin": "ready"},
        }


def test_failed_model_load_keeps_readyz_down_and_requests_503(tmp_path: Path) -> None:
    def broken_loader(path: str, adapters: Mapping[str, str]) -> InferenceEngine:
        raise OSError("weights missing at /secret/path")

    app = create_app(Settings(home=tmp_path, dev_key=TEST_KEY), local_loader=broken_loader)
    with serve(app) as url:
        r = httpx.post(
            url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {TEST_KEY}"},
            json={"model": "default", "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 503
        assert "/secret/path" not in r.text
        assert httpx.get(url + "/readyz").status_code == 503
