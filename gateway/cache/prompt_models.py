"""The table of Bedrock models that take prompt-cache checkpoints (prompt_cache_models.yaml).

Looked up by model id as a target names it: a base model id, an inference profile
(``us.anthropic…``, ``global.anthropic…``) or a foundation-model ARN all match the base row.
Anything else (custom or provisioned model ARNs, imported models, unknown ids) has no row, so
the gateway never inserts cache points for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml

from gateway.errors import ConfigError

FIELDS = ("system", "messages", "tools")
# Cross-region inference profile prefixes (Bedrock's "geo" ids).
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global.")


@dataclass(frozen=True)
class CacheModel:
    id: str
    min_tokens: int
    max_checkpoints: int
    ttl: tuple[str, ...]
    fields: frozenset[str]
    source: str
    checked: str
    note: str = ""


def base_model_id(model: str) -> str:
    """``us.anthropic.x`` → ``anthropic.x``; a foundation-model ARN → its id; else unchanged."""
    if model.startswith("arn:"):
        resource = model.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        if kind not in ("foundation-model", "inference-profile"):
            return model
        model = rest
    for prefix in _PROFILE_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


@functools.cache
def table() -> dict[str, CacheModel]:
    text = resources.files("gateway.cache").joinpath("prompt_cache_models.yaml").read_text()
    rows = yaml.safe_load(text)["models"]
    out: dict[str, CacheModel] = {}
    for row in rows:
        fields = frozenset(row["fields"])
        if not fields <= set(FIELDS) or row["min_tokens"] < 1 or row["max_checkpoints"] < 1:
            raise ConfigError(f"prompt_cache_models.yaml: bad row {row.get('id')!r}")
        out[row["id"]] = CacheModel(
            id=row["id"],
            min_tokens=int(row["min_tokens"]),
            max_checkpoints=int(row["max_checkpoints"]),
            ttl=tuple(row["ttl"]),
            fields=fields,
            source=row["source"],
            checked=str(row["checked"]),
            note=row.get("note", ""),
        )
    return out


def lookup(model: str) -> CacheModel | None:
    return table().get(base_model_id(model))
