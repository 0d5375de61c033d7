"""Target strings a variant may point at (the gateway's own target syntax, minus ``variant:``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from customize.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Target:
    kind: Literal["bedrock", "local"]
    model: str  # Bedrock model id or ARN, or the local base model
    adapter: str | None = None

    def __str__(self) -> str:
        if self.kind == "bedrock":
            return f"bedrock:{self.model}"
        return f"local:{self.model}@{self.adapter}" if self.adapter else f"local:{self.model}"


def parse_target(text: str) -> Target:
    scheme, sep, rest = text.partition(":")
    if scheme == "variant":
        raise UsageError(
            "a variant cannot point at another variant; give its bedrock: or local: target"
        )
    if not sep or scheme not in ("bedrock", "local"):
        raise UsageError(f"target {text!r} must start with bedrock: or local:")
    if not rest.strip() or rest != rest.strip():
        raise UsageError(f"target {text!r} names no model")
    if scheme == "bedrock":
        return Target("bedrock", rest)
    base, at, adapter = rest.partition("@")
    if not base or (at and not adapter):
        raise UsageError(f"target {text!r} must be local:<base> or local:<base>@<adapter>")
    return Target("local", base, adapter or None)


def check_variant_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"variant name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name
