"""Which record rules and limits apply to a dataset, given a base-model family and job type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from customize.catalog import CustomizationType, DataFormat, DatasetLimits, Family
from customize.datasets import records
from customize.errors import UsageError

RecordCheck = Callable[[object], list[str]]

CHECKS: dict[DataFormat, RecordCheck] = {
    "prompt-completion": records.check_prompt_completion,
    "continued-pretraining": records.check_continued_pretraining,
    "claude-messages": records.check_claude_messages,
    "bedrock-conversation-2024": records.check_nova_conversation,
}


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset must satisfy: a record format and the family's documented limits."""

    format: DataFormat
    check: RecordCheck
    limits: DatasetLimits | None


def dataset_spec(
    family: Family, customization_type: CustomizationType = "FINE_TUNING"
) -> DatasetSpec:
    if customization_type not in family.customization_types:
        raise UsageError(
            f"{family.display} does not support {customization_type} "
            f"(it supports {', '.join(family.customization_types)})"
        )
    if customization_type == "CONTINUED_PRE_TRAINING":
        return DatasetSpec("continued-pretraining", CHECKS["continued-pretraining"], family.limits)
    if customization_type == "DISTILLATION":
        # Distillation data are prompts in the conversation schema; the teacher writes the answers.
        check = partial(records.check_nova_conversation, final_assistant=False)
        return DatasetSpec("bedrock-conversation-2024", check, None)
    return DatasetSpec(family.format, CHECKS[family.format], family.limits)


def spec_for_format(data_format: DataFormat) -> DatasetSpec:
    """Rules alone, without a family's limits (``validate --format``)."""
    return DatasetSpec(data_format, CHECKS[data_format], None)
