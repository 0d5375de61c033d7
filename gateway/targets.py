"""Target strings (``bedrock:<id>``, ``local:<base>[@adapter]``, ``variant:<name>``), parsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.errors import InvalidRequest

Kind = Literal["bedrock", "local", "variant"]
KINDS: tuple[Kind, ...] = ("bedrock", "local", "variant")


@dataclass(frozen=True)
class Target:
    kind: Kind
    model: str
    adapter: str | None = None

    def __str__(self) -> str:
        suffix = f"@{self.adapter}" if self.adapter else ""
        return f"{self.kind}:{self.model}{suffix}"


def parse_target(text: str) -> Target:
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS or not rest:
        raise InvalidRequest(
            f"invalid target {text!r}: expected bedrock:<modelId>, local:<base>[@adapter] "
            "or variant:<name>"
        )
    if kind == "local":
        base, _, adapter = rest.partition("@")
        if not base:
            raise InvalidRequest(f"invalid target {text!r}: missing base model name")
        return Target("local", base, adapter or None)
    if kind == "bedrock":
        return Target("bedrock", rest)
    return Target("variant", rest)


def looks_like_target(text: str) -> bool:
    kind, sep, _ = text.partition(":")
    return bool(sep) and kind in KINDS
