"""Typed access to the data files beside this module.

Limits, hyper-parameter ranges and import rules change with Bedrock; they live in JSON files with
their source and the date they were checked, so updating them is a data change, not a code change.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from customize.errors import UsageError

DataFormat = Literal[
    "prompt-completion",
    "continued-pretraining",
    "claude-messages",
    "bedrock-conversation-2024",
]
CustomizationType = Literal[
    "FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION", "REINFORCEMENT_FINE_TUNING"
]
CUSTOMIZATION_TYPES: tuple[CustomizationType, ...] = get_args(CustomizationType)
MediaKind = Literal["image", "video"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetLimits(_Frozen):
    min_records: int | None
    max_records: int | None
    max_tokens_per_record: int | None
    # Some models halve the per-record token limit at larger batch sizes.
    max_tokens_per_record_large_batch: int | None = None
    large_batch_from: int | None = None
    source: str
    checked: str
    unconfirmed: tuple[str, ...] = ()
    note: str = ""

    def tokens_for_batch(self, batch_size: int | None) -> int | None:
        large = self.max_tokens_per_record_large_batch
        if large is not None and batch_size is not None and self.large_batch_from is not None:
            return large if batch_size >= self.large_batch_from else self.max_tokens_per_record
        return self.max_tokens_per_record

    def unconfirmed_line(self) -> str:
        """What the CLI appends to a limit it reports, so nobody mistakes a guess for AWS's."""
        if not self.unconfirmed:
            return ""
        return f" (not confirmed against {self.source}: {', '.join(self.unconfirmed)})"


class FileLimits(_Frozen):
    max_training_bytes: int
    max_continued_pretraining_bytes: int
    max_validation_bytes: int
    source: str
    checked: str
    note: str


class Family(_Frozen):
    name: str
    display: str
    match: tuple[str, ...]
    format: DataFormat
    customization_types: tuple[CustomizationType, ...]
    media: tuple[MediaKind, ...] = ()
    media_source: str = ""
    hyperparameters: str | None = None  # the hyper-parameter table's name, when not ``name``
    on_demand_deployment: bool
    limits: DatasetLimits

    @property
    def hp_table(self) -> str:
        return self.hyperparameters or self.name


class Distillation(_Frozen):
    about: str
    source: str
    rules_source: str
    checked: str
    min_prompts: int
    max_prompts: int
    prompts_note: str
    single_turn_families: tuple[str, ...]
    single_turn_note: str
    teachers: dict[str, tuple[str, ...]]
    teachers_note: str


class Prices(_Frozen):
    about: str
    source: str
    checked: str
    confirmed: bool
    note: str
    training_per_1k_tokens: dict[str, float]
    storage_per_month: dict[str, float]
    provisioned_per_unit_hour: dict[str, dict[str, float]]
    import_cmu_per_5_minutes: float
    commitment_hours: dict[str, int]


class TokenEstimate(_Frozen):
    chars_per_token: float
    note: str


class HyperParameterSpec(_Frozen):
    type: Literal["int", "float", "bool"]
    min: float | None = None
    max: float | None = None
    default: float | bool
    unconfirmed: bool = False
    note: str = ""


class HyperParameterTable(_Frozen):
    source: str
    parameters: dict[str, HyperParameterSpec]


class TokenizerRule(_Frozen):
    config: str
    any_of: tuple[tuple[str, ...], ...]


class ArchitectureRule(_Frozen):
    display: str
    api: Literal["converse", "invoke"]
    multimodal: bool


class ImportRules(_Frozen):
    about: str
    source: str
    api_source: str
    checked: str
    architectures: dict[str, ArchitectureRule]
    weight_dtypes: tuple[str, ...]
    max_total_bytes: int
    max_total_bytes_multimodal: int
    max_total_bytes_note: str
    max_context_tokens: int
    max_context_note: str
    rope_scaling_note: str
    mxfp4_hint: str
    tokenizer_files: TokenizerRule


def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    raw = _load("families.json")["families"]
    return {name: Family(name=name, **body) for name, body in raw.items()}


@lru_cache(maxsize=1)
def file_limits() -> FileLimits:
    return FileLimits(**_load("families.json")["file_limits"])


@lru_cache(maxsize=1)
def not_customizable() -> dict[str, str]:
    return dict(_load("families.json").get("not_customizable", {}))


@lru_cache(maxsize=1)
def distillation() -> Distillation:
    return Distillation(**_load("distillation.json"))


@lru_cache(maxsize=1)
def prices() -> Prices:
    return Prices(**_load("prices.json"))


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
    for prefix, reason in not_customizable().items():
        if model_id.startswith(prefix):
            raise UsageError(f"base model {model_id!r} cannot be customized here: {reason}")
    raise UsageError(
        f"base model {model_id!r} is not one Strata knows how to customize "
        f"(known families: {', '.join(sorted(families()))}; pass --family to choose one)"
    )
