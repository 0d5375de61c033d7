"""The rows ``bench.saturation`` measures and the requests each one replays."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bench._load import Call
from bench._scenarios import MAX_TOKENS, PROMPT


@dataclass(frozen=True)
class Row:
    """One request shape on one kind of gateway (or straight to a fake: ``gateway`` None)."""

    name: str
    gateway: str | None
    surface: str  # converse | converse-stream | openai | openai-stream
    cache: str = "off"  # off | miss | hit
    cold: bool = False
    compare: str = ""  # the direct row this one is measured against

    @property
    def stream(self) -> bool:
        return self.surface.endswith("stream")


ROWS = (
    Row("direct converse", None, "converse"),
    Row("direct converse-stream", None, "converse-stream"),
    Row("plain converse", "plain", "converse", compare="direct converse"),
    Row("plain openai", "plain", "openai", compare="direct converse"),
    Row("plain converse-stream", "plain", "converse-stream", compare="direct converse-stream"),
    Row("plain openai-stream", "plain", "openai-stream", compare="direct converse-stream"),
    Row("stages converse miss", "stages", "converse", "miss", compare="direct converse"),
    Row("stages openai miss", "stages", "openai", "miss", compare="direct converse"),
    Row("stages converse hit", "stages", "converse", "hit", compare="direct converse"),
    Row(
        "stages converse-stream miss",
        "stages",
        "converse-stream",
        "miss",
        compare="direct converse-stream",
    ),
    Row("direct cold", None, "converse", cold=True),
    Row("plain cold", "plain-cold", "converse", cold=True, compare="direct cold"),
    Row("stages cold miss", "stages-cold", "converse", "miss", cold=True, compare="direct cold"),
)


def _body(surface: str, model: str, temperature: float | None, system: str | None) -> bytes:
    if surface.startswith("openai"):
        messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        doc: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": MAX_TOKENS}
        if surface.endswith("stream"):
            doc["stream"] = True
        if temperature is not None:
            doc["temperature"] = temperature
        return orjson.dumps(doc)
    inference: dict[str, Any] = {"maxTokens": MAX_TOKENS}
    if temperature is not None:
        inference["temperature"] = temperature
    conv: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": inference,
    }
    if system is not None:
        conv["system"] = [{"text": system}]
    return orjson.dumps(conv)


def _path(surface: str, model: str) -> str:
    if surface.startswith("openai"):
        return "/v1/chat/completions"
    return f"/model/{model.replace(':', '%3A')}/{surface}"


def request(
    row: Row, port: int, key: str, model: str
) -> tuple[Call, Callable[[int], bytes] | None]:
    """The call to replay, and for cache misses a builder of distinct requests."""
    headers = {"Authorization": f"Bearer {key}"}
    path = _path(row.surface, model)
    temperature = 0.0 if row.cache != "off" else None
    call = Call.post(row.name, port, path, _body(row.surface, model, temperature, None), headers)
    if row.cache != "miss":
        return call, None
    tag = secrets.token_hex(4)

    def distinct(i: int) -> bytes:
        body = _body(row.surface, model, temperature, f"bench {tag} {i}")
        return Call.post(row.name, port, path, body, headers).raw

    return call, distinct
