"""gateway/wire/limits.py: the compiled yes/no check agrees with the walker that names the
broken rule, on valid Converse bodies and on bodies with one node replaced, removed or added
at any depth (derandomised, so CI runs the same cases)."""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidRequest
from gateway.wire.limits import _body_members, _compiled_converse, _structure, converse_input

VALID: dict[str, Any] = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"text": "hello"},
                {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}},
                {
                    "toolResult": {
                        "toolUseId": "t1",
                        "content": [{"text": "42"}],
                        "status": "success",
                    }
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": [1, 2]}}}],
        },
    ],
    "system": [{"text": "be brief"}, {"cachePoint": {"type": "default"}}],
    "inferenceConfig": {"maxTokens": 64, "temperature": 0.5, "topP": 1, "stopSequences": ["x"]},
    "toolConfig": {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
        "toolChoice": {"auto": {}},
    },
    "additionalModelRequestFields": {"top_k": 5},
    "requestMetadata": {"k": "v"},
}

odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 1, 0.0, 2.5, 10**7]),
    st.text(max_size=5),
    st.sampled_from(["", " ", "user", "assistant", "png", "default", "auto", "x" * 3000]),
    st.binary(max_size=4),
    st.just([]),
    st.just({}),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(
        st.sampled_from(["text", "auto", "any", "tool", "zzz"]), st.just({}), max_size=2
    ),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*path, i))
    return found


PATHS = _paths(VALID)[1:]


def _walker_accepts(body: dict[str, Any]) -> bool:
    shape = converse_input()
    try:
        _structure(body, shape, _body_members(shape), "")
    except InvalidRequest:
        return False
    return True


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = body
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            last = path[-1]
            if action == "replace":
                parent[last] = draw(odd)
            elif action == "delete":
                del parent[last]
            elif isinstance(parent, dict):
                parent[draw(st.sampled_from(["zzz", "text", "image", "auto"]))] = draw(odd)
            else:
                parent.append(draw(odd))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return body


def test_the_valid_body_passes_both() -> None:
    assert _walker_accepts(copy.deepcopy(VALID))
    assert _compiled_converse()(copy.deepcopy(VALID))


@settings(
    max_examples=1500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(mutated())
def test_compiled_check_agrees_with_the_walker(body: dict[str, Any]) -> None:
    assert _compiled_converse()(body) == _walker_accepts(body)
