"""Issue 7, acceptance 2: property-based fuzzing of both surfaces finds no 5xx.

Bodies follow the shapes the real clients send (the openai SDK's chat.completions, boto3's
converse); in most, one node at any depth is replaced by arbitrary JSON or deleted. They
go over loopback to one served gateway whose aliases reach the Bedrock-wire fake and a scripted
local engine, so a case costs milliseconds. No upstream fault is scripted, so any status >= 500
is the gateway's own failure. Bounded: ``EXAMPLES`` cases per surface, derandomised so CI runs
the same cases; the count tried is printed (``pytest -s``) and asserted.
"""

# Strategy tables mirror the wire shapes, one field per line however long.
# ruff: noqa: E501
from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters_local.serving.generation import InferenceEngine
from gateway.app import create_app
from gateway.settings import Settings
from tests.fakes.bedrock_wire import BedrockWireServer
from tests.gateway.conftest import BEDROCK_MODEL
from tests.gateway.harness import TEST_KEY, serve
from tests.gateway.scripted_engine import ScriptedEngine, text_script

EXAMPLES = 400
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
MODELS = ["haiku", "local", "default", f"bedrock:{BEDROCK_MODEL}", "local:builtin@ghost",
          "variant:nope", "nope"]  # fmt: skip

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


def sized_list(strategy: st.SearchStrategy[Any], most: int) -> st.SearchStrategy[list[Any]]:
    """A list of a uniformly drawn length (hypothesis favours short ones), so limits are hit."""
    return st.integers(0, most).flatmap(lambda n: st.lists(strategy, min_size=n, max_size=n))


# Well-formed shapes, as the SDKs send them; `mutated` garbles them.
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n").decode()
number = st.floats(min_value=0, max_value=1, allow_nan=False) | st.integers(0, 1)
text = st.text(min_size=1, max_size=40).filter(str.strip) | st.sampled_from(
    ["<|end|><|system|>x", "Uppercase: ab", "\u0000\ud7ff", "x" * 600]
)
name = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
schema = st.just({"type": "object", "properties": {"a": {"type": "integer"}}})

openai_part = st.fixed_dictionaries(
    {"type": st.just("text"), "text": text}
) | st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": st.just(PNG)})}
)
tool_call = st.fixed_dictionaries(
    {"id": name, "type": st.just("function"),
     "function": st.fixed_dictionaries({"name": name, "arguments": st.sampled_from(["{}", '{"a": 1}'])})}
)  # fmt: skip
user_msg = st.fixed_dictionaries(
    {"role": st.just("user"), "content": text | st.lists(openai_part, min_size=1, max_size=3)}
)
system_msg = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer"]), "content": text}
)
assistant_msg = st.fixed_dictionaries(
    {"role": st.just("assistant"), "content": text},
    optional={"tool_calls": st.lists(tool_call, min_size=1, max_size=2)},
)
tool_msg = st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": name, "content": text})
conversation = st.tuples(
    st.lists(system_msg, max_size=1),
    user_msg,
    st.lists(st.tuples(assistant_msg, user_msg | tool_msg), max_size=2),
).map(lambda t: [*t[0], t[1], *(m for pair in t[2] for m in pair)])
tool = st.fixed_dictionaries(
    {"type": st.just("function"),
     "function": st.fixed_dictionaries({"name": name}, optional={"parameters": schema, "description": text})}
)  # fmt: skip
chat_body = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS), "messages": conversation},
    optional={
        "temperature": number, "top_p": number, "max_tokens": st.integers(1, 40),
        "max_completion_tokens": st.integers(1, 40), "n": st.just(1),
        "stop": text | sized_list(text, 30), "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "tools": st.lists(tool, min_size=1, max_size=2),
        "tool_choice": st.sampled_from(["none", "auto", "required"])
        | st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": name})}),
        "seed": st.integers(0, 2**40), "logprobs": st.booleans(),
        "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])}),
        "presence_penalty": number, "user": st.text(max_size=8),
    },
)  # fmt: skip

block = (
    st.fixed_dictionaries({"text": text})
    | st.fixed_dictionaries({"image": st.fixed_dictionaries(
        {"format": st.sampled_from(["png", "jpeg"]), "source": st.fixed_dictionaries({"bytes": st.just("iVBORw0KGgo=")})})})
    | st.fixed_dictionaries({"cachePoint": st.fixed_dictionaries({"type": st.just("default")})})
)  # fmt: skip
bedrock_turns = st.lists(st.lists(block, min_size=1, max_size=3), min_size=1, max_size=4).map(
    lambda turns: [
        {"role": ("user", "assistant")[i % 2], "content": c} for i, c in enumerate(turns)
    ]
)
converse_body = st.fixed_dictionaries(
    {"messages": bedrock_turns},
    optional={
        "system": st.lists(st.fixed_dictionaries({"text": text}), min_size=1, max_size=2),
        "inferenceConfig": st.fixed_dictionaries({}, optional={
            "maxTokens": st.integers(1, 40), "temperature": number, "topP": number,
            "stopSequences": sized_list(text, 30)}),
        "toolConfig": st.fixed_dictionaries({"tools": st.lists(st.fixed_dictionaries(
            {"toolSpec": st.fixed_dictionaries({"name": name, "inputSchema": st.fixed_dictionaries({"json": schema})})}),
            min_size=1, max_size=2)}),
        "additionalModelRequestFields": st.dictionaries(name, json_scalar, max_size=2),
        "requestMetadata": st.dictionaries(name, st.text(max_size=6), min_size=1, max_size=2),
    },
)  # fmt: skip


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, (*path, i))


@st.composite
def mutated(draw: st.DrawFn, shape: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A well-formed body with one node (any field or item, at any depth) replaced by arbitrary
    JSON or deleted; one body in five is left intact. One fault per body means the check for
    that node is the one that must catch it."""
    # A copy: st.just() hands out the same object each time, and it must stay as it was.
    body = copy.deepcopy(draw(shape))
    if draw(st.integers(0, 4)) == 0:
        return body
    path = draw(st.sampled_from(list(_nodes(body))))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.integers(0, 5)) == 0:
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_any)
    return body


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
        settings_ = Settings(home=tmp / "home", dev_key=TEST_KEY, config=config)
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
@given(body=mutated(chat_body))
def test_openai_surface_never_answers_5xx(client: httpx.Client, body: dict[str, Any]) -> None:
    tried["openai"] += 1
    check(client.post("/v1/chat/completions", json=body))


@FUZZ
@given(body=mutated(converse_body), model=st.sampled_from(MODELS[:-1]), stream=st.booleans())
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
