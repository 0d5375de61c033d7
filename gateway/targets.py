"""Target strings, parsed.

bedrock:<modelId or ARN>          the default region, or the ARN's own region
bedrock@<region>:<modelId>        that region explicitly (``bedrock@us-west-2:anthropic…``)
local:<base>[@adapter]
variant:<name>                    resolved through the variant registry, per attempt
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gateway.errors import InvalidRequest

Kind = Literal["bedrock", "local", "variant"]
KINDS: tuple[Kind, ...] = ("bedrock", "local", "variant")

# AWS region names: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-5 ...
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class Target:
    kind: Kind
    model: str
    adapter: str | None = None
    # Only bedrock targets have one; None means the gateway's default region.
    region: str | None = None

    def __str__(self) -> str:
        if self.kind == "bedrock" and self.region and self.region != arn_region(self.model):
            return f"bedrock@{self.region}:{self.model}"
        suffix = f"@{self.adapter}" if self.adapter else ""
        return f"{self.kind}:{self.model}{suffix}"


def arn_region(model: str) -> str | None:
    """The region field of a Bedrock ARN (``arn:aws:bedrock:<region>:…``), else None."""
    if not model.startswith("arn:"):
        return None
    parts = model.split(":", 5)
    if len(parts) < 6 or not _REGION.match(parts[3]):
        return None
    return parts[3]


def parse_target(text: str) -> Target:
    head, sep, rest = text.partition(":")
    kind, _, region = head.partition("@")
    if not sep or kind not in KINDS or not rest:
        raise InvalidRequest(
            f"invalid target {text!r}: expected bedrock:<modelId>, bedrock@<region>:<modelId>, "
            "local:<base>[@adapter] or variant:<name>"
        )
    if region and (kind != "bedrock" or not _REGION.match(region)):
        raise InvalidRequest(
            f"invalid target {text!r}: only bedrock targets take a region, "
            "written bedrock@us-west-2:<modelId>"
        )
    if kind == "local":
        base, _, adapter = rest.partition("@")
        if not base:
            raise InvalidRequest(f"invalid target {text!r}: missing base model name")
        return Target("local", base, adapter or None)
    if kind == "bedrock":
        return Target("bedrock", rest, region=region or arn_region(rest))
    return Target("variant", rest)


def looks_like_target(text: str) -> bool:
    head, sep, _ = text.partition(":")
    return bool(sep) and head.partition("@")[0] in KINDS
