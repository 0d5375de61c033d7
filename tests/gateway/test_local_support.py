"""Issue 7, items 1 (edge part), 5 and 6, with a scripted engine (no model load).

Item 6: every parameter a local model cannot honour is refused with 400 naming it; ``seed``
is passed on. Item 1: sampling values that broke torch reach the engine as greedy. Item 5: a
missing adapter or base folder marks only its target unavailable, at start, in the log and in
``/readyz``.
"""

# Case tables keep one case per line, however long.
# ruff: noqa: E501
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters_local.serving.generation import InferenceEngine
from gateway.app import create_app
from gateway.config import load_config
from gateway.settings import Settings
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.scripted_engine import ScriptedEngine, text_script

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
USER = [{"role": "user", "content": "hi"}]


class Gateway:
    def __init__(self, url: str, engine: ScriptedEngine, loaded: list[Mapping[str, str]]) -> None:
        self.url, self.engine, self.loaded = url, engine, loaded

    def chat(self, **body: Any) -> httpx.Response:
        body = {"model": "default", "messages": USER, **body}
        return httpx.post(self.url + "/v1/chat/completions", headers=AUTH, json=body)

    def converse(self, model: str = "default", **body: Any) -> httpx.Response:
        body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], **body}
        return httpx.post(f"{self.url}/model/{model}/converse", headers=AUTH, json=body)


def start(tmp_path: Path, config: str | None = None) -> Iterator[Gateway]:
    engine = ScriptedEngine(text_script("ok"))
    loaded: list[Mapping[str, str]] = []

    def loader(path: str, adapters: Mapping[str, str]) -> InferenceEngine:
        loaded.append(dict(adapters))
        return engine

    path = None
    if config is not None:
        path = tmp_path / "strata.yaml"
        path.write_text(config)
    settings = Settings(home=tmp_path / "home", dev_key=TEST_KEY, config=path)
    with serve(create_app(settings, local_loader=loader)) as url:
        yield Gateway(url, engine, loaded)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from start(tmp_path_factory.mktemp("support"))


REFUSED_OPENAI = [
    ("tools", {"tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("tools", {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    ("logprobs", {"logprobs": True}),
    ("top_logprobs", {"top_logprobs": 3}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("presence_penalty", {"presence_penalty": -1}),
    ("logit_bias", {"logit_bias": {"42": 10}}),
    ("reasoning_effort", {"reasoning_effort": "high"}),
    ("functions", {"functions": [{"name": "f"}]}),
]  # fmt: skip


@pytest.mark.parametrize(("param", "extra"), REFUSED_OPENAI, ids=[c[0] for c in REFUSED_OPENAI])
def test_openai_parameters_local_models_cannot_honour_are_refused(
    gw: Gateway, param: str, extra: dict[str, Any]
) -> None:
    before = len(gw.engine.received)
    r = gw.chat(**extra)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert param in r.json()["error"]["message"]
    assert len(gw.engine.received) == before, "a refused request reached the engine"


def test_neutral_values_are_accepted(gw: Gateway) -> None:
    r = gw.chat(
        logprobs=False,
        frequency_penalty=0,
        presence_penalty=0.0,
        logit_bias={},
        response_format={"type": "text"},
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice="none",
        user="someone",
    )
    assert r.status_code == 200, r.text


REFUSED_BEDROCK = [
    ("guardrailConfig", {"guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}}),
    ("toolConfig", {"toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]}}),
    ("additionalModelRequestFields", {"additionalModelRequestFields": {"top_k": 5}}),
    ("promptVariables", {"promptVariables": {"x": {"text": "y"}}}),
    ("system.0", {"system": [{"guardContent": {"text": {"text": "check me"}}}]}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "extra"), REFUSED_BEDROCK, ids=[c[0] for c in REFUSED_BEDROCK])
def test_bedrock_fields_local_models_cannot_honour_are_refused(
    gw: Gateway, name: str, extra: dict[str, Any]
) -> None:
    before = len(gw.engine.received)
    r = gw.converse(**extra)
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-errortype"].startswith("ValidationException")
    assert name in r.json()["message"]
    assert len(gw.engine.received) == before


def test_seed_reaches_the_engine(gw: Gateway) -> None:
    assert gw.chat(seed=1234, temperature=0.8).status_code == 200
    assert gw.engine.received[-1].seed == 1234


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        ({"temperature": 1e-40}, (0.0, None)),
        ({"temperature": 0.7, "top_p": 1e-30}, (0.0, None)),
        ({"temperature": 0.7, "top_p": 0.9}, (0.7, 0.9)),
    ],
)
def test_vanishing_sampling_values_become_greedy(
    gw: Gateway, sampling: dict[str, float], expected: tuple[float, float | None]
) -> None:
    assert gw.chat(**sampling).status_code == 200
    request = gw.engine.received[-1]
    assert (request.temperature, request.top_p) == expected


def test_cache_points_are_no_reason_to_refuse(gw: Gateway) -> None:
    content = [{"text": "hi"}, {"cachePoint": {"type": "default"}}]
    r = gw.converse(messages=[{"role": "user", "content": content}])
    assert r.status_code == 200, r.text


# Item 5 -------------------------------------------------------------------------------------


def test_missing_adapter_marks_only_its_target_unavailable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "shout").mkdir()
    config = f"""
aliases:
  default: local:builtin
  upper: local:builtin@upper
local:
  bases:
    builtin: {{path: builtin, adapters: {{upper: ./runs/upper, shout: {tmp_path / "shout"}}}}}
    ghost: {{path: {tmp_path / "no-such-model"}}}
"""
    for gw in start(tmp_path, config):
        # The base loads without the missing adapter, so `default` works at once.
        assert gw.chat().status_code == 200
        assert gw.loaded == [{"shout": str(tmp_path / "shout")}]
        r = gw.chat(model="upper")
        assert r.status_code == 503
        assert "local:builtin@upper is unavailable" in r.json()["error"]["message"]
        assert "runs/upper" not in r.text  # file paths stay in the log
        assert gw.chat(model="local:ghost").status_code == 503
        ready = httpx.get(gw.url + "/readyz")
        assert ready.status_code == 200
        local = ready.json()["local"]
        assert local["local:builtin"] == "ready"
        assert local["local:builtin@upper"].startswith("unavailable")
        assert local["local:ghost"].startswith("unavailable")
    warning = next(r.getMessage() for r in caplog.records if "builtin@upper" in r.getMessage())
    assert "strata.yaml: local.bases.builtin.adapters.upper" in warning
    assert "runs/upper does not exist" in warning


def test_a_bedrock_only_config_loads_no_local_model(tmp_path: Path) -> None:
    config = "aliases:\n  haiku: bedrock:anthropic.claude-3-haiku-20240307-v1:0\n"
    for gw in start(tmp_path, config):
        assert httpx.get(gw.url + "/readyz").json()["providers"]["local"] is True
        assert gw.loaded == []  # `default` is still routable, loaded on first use
        assert gw.chat().status_code == 200
        assert len(gw.loaded) == 1


def readme_yaml() -> list[str]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(readme_yaml())))
def test_every_readme_config_example_loads(tmp_path: Path, index: int) -> None:
    text = readme_yaml()[index]
    path = tmp_path / "strata.yaml"
    path.write_text(text)
    config = load_config(Settings(home=tmp_path, config=path))
    assert set(yaml.safe_load(text)["aliases"]) <= set(config.aliases)
    # What it names is either usable or listed, with its reason, as unavailable.
    for entry in config.aliases.values():
        for chain in entry.chains():
            for target in chain:
                if target.kind == "local":
                    assert target.model in config.local.bases
