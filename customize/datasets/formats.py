"""Which record rules and limits apply to a dataset, given a base-model family and job type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

from customize.catalog import (
    CustomizationType,
    DataFormat,
    DatasetLimits,
    Family,
    MediaKind,
    distillation,
    file_limits,
)
from customize.datasets import records
from customize.errors import UsageError

RecordCheck = Callable[[object], list[str]]
Role = Literal["training", "validation"]

CHECKS: dict[DataFormat, RecordCheck] = {
    "prompt-completion": records.check_prompt_completion,
    "continued-pretraining": records.check_continued_pretraining,
    "claude-messages": records.check_claude_messages,
    "bedrock-conversation-2024": records.check_nova_conversation,
}


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset must satisfy: a record format, the family's limits and media rules."""

    format: DataFormat
    check: RecordCheck
    limits: DatasetLimits | None
    # None: no family known, so media are not judged; () a text-only model.
    media: tuple[MediaKind, ...] | None = None
    family_display: str = ""
    role: Role = "training"
    min_records: int | None = None
    max_records: int | None = None
    max_tokens_per_record: int | None = None
    max_bytes: int | None = None
    bucket: str | None = None  # media must live in the dataset's own bucket, when it is known
    single_turn: bool = False
    record_rule_note: str = ""

    def for_role(self, role: Role) -> DatasetSpec:
        """Validation data: no record minimum of its own (AWS's quotas count training plus
        validation together), and the validation file-size cap."""
        if role == "training":
            return replace(self, role=role)
        return replace(
            self,
            role=role,
            min_records=None,
            max_records=None,
            max_bytes=file_limits().max_validation_bytes if self.limits else None,
        )

    def in_bucket(self, bucket: str | None) -> DatasetSpec:
        return replace(self, bucket=bucket)


def _single_turn(record: object) -> list[str]:
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return []
    users = sum(1 for m in record["messages"] if isinstance(m, dict) and m.get("role") == "user")
    if users > 1 or len(record["messages"]) > 2:
        return [
            f"this student takes single-turn prompts only (one user message), got {users} user "
            f"message(s) in {len(record['messages'])}"
        ]
    return []


def _distillation_check(single_turn: bool, record: object) -> list[str]:
    problems = records.check_nova_conversation(record, final_assistant=False)
    return problems + (_single_turn(record) if single_turn else [])


def dataset_spec(
    family: Family,
    customization_type: CustomizationType = "FINE_TUNING",
    *,
    batch_size: int | None = None,
) -> DatasetSpec:
    if customization_type not in family.customization_types:
        raise UsageError(
            f"{family.display} does not support {customization_type} "
            f"(it supports {', '.join(family.customization_types)})"
        )
    limits = family.limits
    sizes = file_limits()
    common = {
        "limits": limits,
        "media": family.media,
        "family_display": family.display,
        "min_records": limits.min_records,
        "max_records": limits.max_records,
        "max_tokens_per_record": limits.tokens_for_batch(batch_size),
        "max_bytes": sizes.max_training_bytes,
    }
    if customization_type == "CONTINUED_PRE_TRAINING":
        common["max_bytes"] = sizes.max_continued_pretraining_bytes
        return DatasetSpec("continued-pretraining", CHECKS["continued-pretraining"], **common)  # type: ignore[arg-type]
    if customization_type == "DISTILLATION":
        # Distillation data are prompts in the conversation schema; the teacher writes the answers.
        rules = distillation()
        single = family.name in rules.single_turn_families
        common.update(min_records=rules.min_prompts, max_records=rules.max_prompts)
        return DatasetSpec(
            "bedrock-conversation-2024",
            partial(_distillation_check, single),
            single_turn=single,
            record_rule_note=rules.prompts_note,
            **common,  # type: ignore[arg-type]
        )
    if customization_type == "REINFORCEMENT_FINE_TUNING":
        # RFT data are prompts too; the grader scores the model's answers.
        check = partial(records.check_nova_conversation, final_assistant=False)
        return DatasetSpec("bedrock-conversation-2024", check, **common)  # type: ignore[arg-type]
    return DatasetSpec(family.format, CHECKS[family.format], **common)  # type: ignore[arg-type]


def spec_for_format(data_format: DataFormat) -> DatasetSpec:
    """Rules alone, without a family's limits (``validate --format``)."""
    return DatasetSpec(data_format, CHECKS[data_format], None)
