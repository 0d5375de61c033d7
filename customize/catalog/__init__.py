"""Typed access to the data files beside this module.

Limits, hyper-parameter ranges and import rules change with Bedrock; they live in JSON files with
their source and the date they were checked, so updating them is a data change, not a code change.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from customize.errors import UsageError

DataFormat = Literal[
    "prompt-completion",
    "continued-pretraining",
    "claude-messages",
    "bedrock-conversation-2024",
]
CustomizationType = Literal["FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetLimits(_Frozen):
    min_records: int | None
    max_records: int | None
    max_tokens_per_record: int | None
    source: str
    checked: str


class Family(_Frozen):
    name: str
    display: str
    match: tuple[str, ...]
    format: DataFormat
    customization_types: tuple[CustomizationType, ...]
    on_demand_deployment: bool
    limits: DatasetLimits


class TokenEstimate(_Frozen):
    chars_per_token: float
    note: str


class HyperParameterSpec(_Frozen):
    type: Literal["int", "float", "bool"]
    min: float | None = None
    max: float | None = None
    default: float | bool


class HyperParameterTable(_Frozen):
    source: str
    parameters: dict[str, HyperParameterSpec]


class TokenizerRule(_Frozen):
    config: str
    any_of: tuple[tuple[str, ...], ...]


class ImportRules(_Frozen):
    about: str
    source: str
    checked: str
    architectures: dict[str, str]
    weight_dtypes: tuple[str, ...]
    max_total_bytes: int
    max_total_bytes_note: str
    tokenizer_files: TokenizerRule


def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    raw = _load("families.json")["families"]
    return {name: Family(name=name, **body) for name, body in raw.items()}


@lru_cache(maxsize=1)
def token_estimate() -> TokenEstimate:
    return TokenEstimate(**_load("families.json")["token_estimate"])


@lru_cache(maxsize=1)
def hyperparameter_tables() -> dict[str, HyperParameterTable]:
    raw = _load("hyperparameters.json")["families"]
    return {name: HyperParameterTable(**body) for name, body in raw.items()}


@lru_cache(maxsize=1)
def import_rules() -> ImportRules:
    return ImportRules(**_load("import_rules.json"))


def model_id_of(identifier: str) -> str:
    """The model id in a foundation-model ARN (``arn:…:foundation-model/ID``), else as given."""
    marker = ":foundation-model/"
    return identifier.split(marker, 1)[1] if marker in identifier else identifier


def family_named(name: str) -> Family:
    known = families()
    if name not in known:
        raise UsageError(f"unknown model family {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


def family_for_model(identifier: str) -> Family:
    """The family whose id prefixes match ``identifier`` (a model id or foundation-model ARN)."""
    model_id = model_id_of(identifier)
    for family in families().values():
        if any(model_id.startswith(prefix) for prefix in family.match):
            return family
    raise UsageError(
        f"base model {model_id!r} is not one Strata knows how to customize "
        f"(known families: {', '.join(sorted(families()))}; pass --family to choose one)"
    )
