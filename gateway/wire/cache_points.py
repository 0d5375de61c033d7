"""Pure: Anthropic-style prompt-cache markers on the OpenAI surface → Bedrock ``cachePoint``.

A content part, a system part or a tool with ``cache_control: {"type": "ephemeral"}`` is
followed, in the Converse request, by ``{"cachePoint": {"type": "default"}}``: Bedrock caches
the prompt prefix up to that point (the same meaning Anthropic's marker has: "cache up to and
including this block"). Only ``ephemeral`` exists on either side; anything else is refused,
naming the field, rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.errors import InvalidRequest


def cache_point() -> dict[str, Any]:
    return {"cachePoint": {"type": "default"}}


def wants_cache_point(item: Mapping[str, Any] | Any, where: str) -> bool:
    marker = item.get("cache_control") if isinstance(item, Mapping) else None
    if marker is None:
        return False
    if isinstance(marker, Mapping) and marker.get("type") == "ephemeral":
        return True
    raise InvalidRequest(
        f'{where}.cache_control: only {{"type": "ephemeral"}} is supported',
        param=f"{where}.cache_control",
    )


def marked_blocks(
    parts: Iterable[tuple[Mapping[str, Any] | Any, dict[str, Any]]], where: str
) -> list[dict[str, Any]]:
    """Each translated block, followed by a cache point where its source part asked for one."""
    out: list[dict[str, Any]] = []
    for j, (source, block) in enumerate(parts):
        out.append(block)
        if wants_cache_point(source, f"{where}.{j}"):
            out.append(cache_point())
    return out
