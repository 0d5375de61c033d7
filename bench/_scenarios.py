"""The requests the benchmark replays, and checks that an answer to each is the right one.

Every request carries the same prompt; the fake echoes it back (split into a fixed number of
stream deltas), so a correct answer on any path is exactly that prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import orjson
from botocore.eventstream import EventStreamBuffer

from bench._load import Call

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
PROMPT = (
    "Summarise in one line why a gateway that adds a millisecond per request is better than "
    "one that adds thirty, given that both forward the same Bedrock Converse call unchanged."
)
MAX_TOKENS = 256


@dataclass(frozen=True)
class Scenario:
    """One request shape sent to one server; ``via`` is ``direct``, ``strata`` or ``litellm``."""

    name: str
    via: str
    surface: str  # converse | converse-stream | openai | openai-stream
    call: Call

    @property
    def stream(self) -> bool:
        return self.surface.endswith("stream")


def converse_body() -> bytes:
    return orjson.dumps(
        {
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "inferenceConfig": {"maxTokens": MAX_TOKENS},
        }
    )


def openai_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def converse_scenarios(via: str, port: int, key: str, model: str) -> list[Scenario]:
    """Converse and ConverseStream; ``model`` is the path segment (an alias or a model id)."""
    quoted = quote(model, safe="")
    body = converse_body()
    return [
        Scenario(
            f"{via} {op}",
            via,
            op,
            Call.post(f"{via} {op}", port, f"/model/{quoted}/{op}", body, _auth(key)),
        )
        for op in ("converse", "converse-stream")
    ]


def openai_scenarios(via: str, port: int, key: str, model: str) -> list[Scenario]:
    out = []
    for stream in (False, True):
        surface = "openai-stream" if stream else "openai"
        body = openai_body(model, stream)
        call = Call.post(f"{via} {surface}", port, "/v1/chat/completions", body, _auth(key))
        out.append(Scenario(f"{via} {surface}", via, surface, call))
    return out


def check_answer(surface: str, body: bytes) -> str | None:
    """Why ``body`` is not the echo of PROMPT the fake sends back, or ``None`` if it is."""
    try:
        text = _TEXT[surface](body)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"{surface}: unreadable answer ({type(exc).__name__}: {exc}): {body[:200]!r}"
    if text != PROMPT:
        return f"{surface}: answer text {text[:80]!r} is not the prompt echoed back"
    return None


def _converse_text(body: bytes) -> str:
    text: str = orjson.loads(body)["output"]["message"]["content"][0]["text"]
    return text


def _openai_text(body: bytes) -> str:
    text: str = orjson.loads(body)["choices"][0]["message"]["content"]
    return text


def _converse_stream_text(body: bytes) -> str:
    # botocore's own decoder, so the gateway's framing is checked by an independent reader.
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    parts: list[str] = []
    kinds: list[str] = []
    for message in buffer:
        headers = cast(dict[str, Any], message.headers)  # the stubs type it wrongly
        kind = headers.get(":event-type") or headers.get(":exception-type")
        kinds.append(str(kind))
        if kind == "contentBlockDelta":
            parts.append(orjson.loads(message.payload)["delta"]["text"])
    if kinds[-2:] != ["messageStop", "metadata"]:
        raise ValueError(f"stream ended with {kinds[-2:]}, not messageStop, metadata")
    return "".join(parts)


def _openai_stream_text(body: bytes) -> str:
    lines = [ln for ln in body.decode().split("\n\n") if ln.strip()]
    if not lines or lines[-1] != "data: [DONE]":
        raise ValueError("stream did not end with data: [DONE]")
    parts: list[str] = []
    for line in lines[:-1]:
        if not line.startswith("data: "):
            raise ValueError(f"not an SSE data line: {line[:60]!r}")
        choices = orjson.loads(line[6:])["choices"]
        if choices:
            parts.append(choices[0]["delta"].get("content") or "")
    return "".join(parts)


_TEXT = {
    "converse": _converse_text,
    "converse-stream": _converse_stream_text,
    "openai": _openai_text,
    "openai-stream": _openai_stream_text,
}
