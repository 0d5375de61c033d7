"""Idempotency tokens and default names derived from a request's inputs.

The same inputs give the same token, so re-running a command asks AWS for the job it already
started instead of a second one; changing any input gives a new token and a new name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import orjson


def request_token(fields: Mapping[str, object]) -> str:
    """32 hex characters (the API allows [a-zA-Z0-9-], 1..256)."""
    canonical = orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def resource_name(prefix: str, token: str, room: int = 48) -> str:
    """A Bedrock-safe name (``[0-9a-zA-Z][_-]?`` repeated), at most ``room`` + 13 characters."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "-", prefix).strip("-") or "strata"
    return f"{cleaned[:room].rstrip('-')}-{token[:12]}"
