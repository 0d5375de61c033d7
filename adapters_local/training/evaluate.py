"""Exact-match scoring by greedy generation (what the acceptance figures are measured with)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters_local.data.chat_format import prompt_ids
from adapters_local.data.messages import ChatMessage


@dataclass(frozen=True)
class Reference:
    messages: tuple[ChatMessage, ...]
    answer: str


def user_turn(prompt: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", prompt),)


def greedy_answers(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[ChatMessage]],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 64,
) -> list[str]:
    """Greedy answers through ``model.generate`` with left padding."""
    import torch

    device = next(model.parameters()).device
    answers: list[str] = []
    for start in range(0, len(conversations), batch_size):
        chunk = [prompt_ids(tokenizer, c) for c in conversations[start : start + batch_size]]
        width = max(len(ids) for ids in chunk)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk], device=device)
        mask = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=device
        )
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
        for row in out[:, width:].tolist():
            answers.append(tokenizer.decode(row, skip_special_tokens=True))
    return answers


def exact_match(
    model: Any, tokenizer: Any, references: Sequence[Reference], **kwargs: int
) -> float:
    if not references:
        return 0.0
    answers = greedy_answers(model, tokenizer, [r.messages for r in references], **kwargs)
    hits = sum(
        1 for got, ref in zip(answers, references, strict=True) if got.strip() == ref.answer.strip()
    )
    return hits / len(references)
