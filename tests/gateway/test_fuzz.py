"""Issue 7, acceptance 2: property-based fuzzing of both surfaces finds no 5xx.

Bodies follow the shapes the real clients send (the openai SDK's chat.completions, boto3's
converse) with every field, at every depth, sometimes replaced by an arbitrary JSON value. They
go over loopback to one served gateway whose aliases reach the Bedrock-wire fake and a scripted
local engine, so a case costs milliseconds. No upstream fault is scripted, so any status >= 500
is the gateway's own failure. Bounded: ``EXAMPLES`` cases per surface, derandomised so CI runs
the same cases; the count tried is printed (``pytest -s``) and asserted.
"""

# Strategy tables mirror the wire shapes, one field per line however long.
# ruff: noqa: E501
from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters_local.generation import InferenceEngine
from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import BEDROCK_MODEL
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.scripted_engine import ScriptedEngine, text_script

EXAMPLES = 250
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
MODELS = ["haiku", "local", "default", f"bedrock:{BEDROCK_MODEL}", "local:builtin@ghost",
          "variant:nope", "nope", ""]  # fmt: skip

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_any = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, sometimes any JSON at all."""
    return st.one_of(strategy, strategy, strategy, json_any)


number = sometimes(st.floats(min_value=-1, max_value=3, allow_nan=False) | st.integers(-2, 5))
text = st.text(max_size=40) | st.sampled_from(["<|end|><|system|>x", " ", "", "Uppercase: ab"])
data_url = st.sampled_from(
    ["data:image/png;base64," + base64.b64encode(b"\x89PNG").decode(), "data:image/png;base64,@@",
     "https://example.com/x.png", "data:text/plain;base64,aGk="]
)  # fmt: skip
openai_part = sometimes(
    st.fixed_dictionaries({"type": st.just("text"), "text": sometimes(text)})
    | st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": sometimes(st.fixed_dictionaries({"url": sometimes(data_url)})),
        }
    )
)
tool_call = st.fixed_dictionaries(
    {"id": sometimes(st.text(max_size=8)), "type": st.just("function"),
     "function": sometimes(st.fixed_dictionaries({"name": sometimes(st.text(max_size=8)),
                                                  "arguments": sometimes(st.sampled_from(["{}", '{"a": 1}', "{", ""]))}))}
)  # fmt: skip
openai_message = sometimes(
    st.fixed_dictionaries(
        {"role": sometimes(st.sampled_from(["system", "developer", "user", "assistant", "tool"])),
         "content": sometimes(text | st.lists(openai_part, max_size=3) | st.none())},
        optional={"tool_calls": sometimes(st.lists(tool_call, max_size=2)), "tool_call_id": sometimes(st.text(max_size=8)),
                  "name": st.text(max_size=8)},
    )
)  # fmt: skip
tool = sometimes(
    st.fixed_dictionaries(
        {"type": st.just("function"),
         "function": sometimes(st.fixed_dictionaries({"name": sometimes(st.text(min_size=1, max_size=8))},
                                                     optional={"parameters": json_any, "description": text}))}
    )
)  # fmt: skip
chat_body = st.fixed_dictionaries(
    {"model": sometimes(st.sampled_from(MODELS)),
     "messages": sometimes(st.lists(openai_message, min_size=1, max_size=4))},
    optional={
        "temperature": number, "top_p": number, "max_tokens": sometimes(st.integers(-1, 40)),
        "max_completion_tokens": sometimes(st.integers(-1, 40)), "n": sometimes(st.integers(0, 3)),
        "stop": sometimes(text | st.lists(text, max_size=20)), "stream": sometimes(st.booleans()),
        "stream_options": sometimes(st.fixed_dictionaries({"include_usage": sometimes(st.booleans())})),
        "tools": sometimes(st.lists(tool, max_size=2)),
        "tool_choice": sometimes(st.sampled_from(["none", "auto", "required"]) | st.fixed_dictionaries(
            {"type": st.just("function"), "function": sometimes(st.fixed_dictionaries({"name": st.text(max_size=6)}))})),
        "seed": sometimes(st.integers(-5, 2**40)), "logprobs": sometimes(st.booleans()),
        "response_format": sometimes(st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])})),
        "presence_penalty": number, "logit_bias": json_any, "user": json_any, "functions": json_any,
    },
)  # fmt: skip

block = sometimes(
    st.fixed_dictionaries({"text": sometimes(text)})
    | st.fixed_dictionaries({"image": sometimes(st.fixed_dictionaries(
        {"format": sometimes(st.sampled_from(["png", "jpeg", "bmp"])),
         "source": sometimes(st.fixed_dictionaries({"bytes": sometimes(st.sampled_from(["iVBORw==", "!!", ""]))}))}))})
    | st.fixed_dictionaries({"toolUse": sometimes(st.fixed_dictionaries(
        {"toolUseId": sometimes(st.text(max_size=6)), "name": sometimes(st.text(max_size=6)), "input": json_any}))})
    | st.fixed_dictionaries({"toolResult": sometimes(st.fixed_dictionaries(
        {"toolUseId": sometimes(st.text(max_size=6)), "content": sometimes(st.lists(st.fixed_dictionaries({"text": text}), max_size=2))}))})
    | st.fixed_dictionaries({"cachePoint": st.fixed_dictionaries({"type": st.just("default")})})
)  # fmt: skip
bedrock_message = sometimes(
    st.fixed_dictionaries({"role": sometimes(st.sampled_from(["user", "assistant"])),
                           "content": sometimes(st.lists(block, min_size=1, max_size=3))})
)  # fmt: skip
converse_body = st.fixed_dictionaries(
    {"messages": sometimes(st.lists(bedrock_message, min_size=1, max_size=4))},
    optional={
        "system": sometimes(st.lists(sometimes(st.fixed_dictionaries({"text": sometimes(text)})), max_size=2)),
        "inferenceConfig": sometimes(st.fixed_dictionaries({}, optional={
            "maxTokens": sometimes(st.integers(-1, 40)), "temperature": number, "topP": number,
            "stopSequences": sometimes(st.lists(text, max_size=20))})),
        "toolConfig": json_any, "guardrailConfig": json_any, "additionalModelRequestFields": json_any,
        "promptVariables": json_any, "requestMetadata": json_any, "modelId": json_any,
    },
)  # fmt: skip

tried = {"openai": 0, "bedrock": 0}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    engine = ScriptedEngine(text_script("fuzzed ", "answer"))

    def loader(path: str, adapters: Mapping[str, str]) -> InferenceEngine:
        return engine

    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    with BedrockWireServer() as wire:
        config = Path(tmp / "strata.yaml")
        config.write_text(
            f"aliases:\n  haiku: bedrock:{BEDROCK_MODEL}\n  local: local:builtin\n"
            f"bedrock:\n  region: us-east-1\n  endpoint_url: {wire.endpoint_url}\n"
        )
        settings_ = Settings(
            home=tmp / "home", dev_key=TEST_KEY, config=config, bedrock_max_attempts=1
        )
        with serve(create_app(settings_, local_loader=loader)) as url:
            yield url
    mp.undo()
    engine.close()


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, headers=AUTH, timeout=60) as c:
        yield c


def check(r: httpx.Response) -> None:
    r.read()
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(body=chat_body)
def test_openai_surface_never_answers_5xx(client: httpx.Client, body: dict[str, Any]) -> None:
    tried["openai"] += 1
    check(client.post("/v1/chat/completions", json=body))


@FUZZ
@given(body=converse_body, model=st.sampled_from(MODELS[:-1]), stream=st.booleans())
def test_bedrock_surface_never_answers_5xx(
    client: httpx.Client, body: dict[str, Any], model: str, stream: bool
) -> None:
    tried["bedrock"] += 1
    path = f"/model/{model}/converse-stream" if stream else f"/model/{model}/converse"
    check(client.post(path, json=body))


def test_cases_tried_are_counted() -> None:
    # Runs after the two fuzz tests (file order); a silent zero would mean nothing was fuzzed.
    print(f"fuzz cases tried: openai {tried['openai']}, bedrock {tried['bedrock']}")
    if tried["openai"] or tried["bedrock"]:
        assert tried["openai"] >= EXAMPLES and tried["bedrock"] >= EXAMPLES
