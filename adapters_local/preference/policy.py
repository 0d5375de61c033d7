"""The policy side of DPO and GRPO: a base (optionally with a starting adapter), its reference,
the held-out prompts and the before/after figures.

The reference is never a second copy of the model: with a fresh LoRA it is the base with the
adapter disabled (trl does the same inside its loss); with a starting adapter (``--adapter
sft/``) trl keeps a frozen copy of that adapter's weights only, named ``ref``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters_local.data.records import DataError, read_jsonl
from adapters_local.preference import judge
from adapters_local.preference.pairs import Prompt, unstyled

REFERENCE_ADAPTER = "ref"  # the name trl gives the frozen copy of a starting adapter


@dataclass
class Policy:
    model: Any
    tokenizer: Any
    base_path: Path
    base_parameters: int
    device: str


def load_policy(base: str, adapter: Path | None, device: str) -> Policy:
    from adapters_local.models.loading import (
        ModelError,
        is_lora_folder,
        load_model,
        load_tokenizer,
        resolve_base,
    )

    path = resolve_base(base)
    tokenizer = load_tokenizer(path)
    model = load_model(path, device)
    parameters = sum(p.numel() for p in model.parameters())
    if adapter is not None:
        if not is_lora_folder(adapter):
            raise ModelError(f"{adapter} is not a LoRA adapter folder (strata train lora)")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    return Policy(model, tokenizer, path, parameters, device)


@contextmanager
def reference_of(model: Any) -> Iterator[None]:
    """Forwards inside run on the reference policy."""
    config = getattr(model, "peft_config", None)
    if config is None:
        yield  # not wrapped yet: the model is its own reference
        return
    if REFERENCE_ADAPTER in config:
        active = model.active_adapter
        model.set_adapter(REFERENCE_ADAPTER)
        try:
            yield
        finally:
            model.set_adapter(active)
        return
    with model.disable_adapter():
        yield


def read_prompts(path: Path | None, limit: int = 200) -> list[Prompt]:
    """Held-out prompts with task answers (prompt/completion or messages JSONL)."""
    if path is None:
        return []
    records = read_jsonl(path)
    if not records:
        raise DataError(f"{path}: no records")
    return [Prompt(r.messages, unstyled(r.answer)) for r in records[:limit]]


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate(policy: Policy, prompts: list[Prompt]) -> tuple[list[str], dict[str, float]]:
    if not prompts:
        return [], {}
    outputs = judge.answers(policy.model, policy.tokenizer, prompts)
    return outputs, judge.figures(prompts, outputs)


def compare(
    policy: Policy,
    prompts: list[Prompt],
    before: list[str],
    after: list[str],
    win_judge: judge.Judge,
) -> dict[str, float]:
    """KL to the reference along the tuned answers, and the tuned policy's win rate."""
    if not prompts:
        return {}
    model = policy.model
    return {
        "kl_to_reference": judge.kl_to_reference(
            model, policy.tokenizer, prompts, after, lambda: reference_of(model)
        ),
        "win_rate_vs_reference": judge.win_rate(win_judge, prompts, after, before),
    }


def pick_judge(reward_model: Path | None) -> tuple[judge.Judge, str]:
    if reward_model is None:
        return judge.style_judge, "programmatic (synthetic task: correct, in the preferred style)"
    from adapters_local.preference.scorer import RewardScorer

    return RewardScorer.load(reward_model).judge, f"reward model {reward_model}"


def save_adapter(model: Any, out: Path) -> None:
    """The tuned LoRA alone (the reference copy stays out): a folder ``strata export`` and the
    local serving engine read like one from ``strata train lora``."""
    if REFERENCE_ADAPTER in getattr(model, "peft_config", {}):
        model.delete_adapter(REFERENCE_ADAPTER)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
