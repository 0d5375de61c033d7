"""Chat turns to token ids through the tokenizer's own chat template.

Works with any Hugging Face tokenizer that has a chat template (the built-in one has); the
template is rendered to text and then tokenized, which behaves the same on transformers 4 and 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters_local.data.messages import ChatMessage
from adapters_local.data.packing import IGNORE, Example


def _as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def prompt_ids(tokenizer: Any, messages: Sequence[ChatMessage]) -> list[int]:
    """Token ids of the conversation followed by the assistant's turn opener."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the tokenizer has no chat template")
    text = tokenizer.apply_chat_template(
        _as_dicts(messages), tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def training_example(tokenizer: Any, messages: Sequence[ChatMessage], answer: str) -> Example:
    """Prompt plus answer plus end-of-turn, with the loss on the answer tokens only."""
    prompt = prompt_ids(tokenizer, messages)
    full_text = tokenizer.apply_chat_template(
        [*_as_dicts(messages), {"role": "assistant", "content": answer}], tokenize=False
    )
    full = list(tokenizer(full_text, add_special_tokens=False)["input_ids"])
    if full[: len(prompt)] != prompt:
        # Some templates render the prompt differently once an answer follows; fall back to
        # prompt + answer + EOS, which is what generation produces anyway.
        answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
        full = [*prompt, *answer_ids, tokenizer.eos_token_id]
    full = _trim_after_answer(full, len(prompt), tokenizer.eos_token_id)
    labels = [IGNORE] * len(prompt) + full[len(prompt) :]
    return Example(tuple(full), tuple(labels))


def _trim_after_answer(ids: list[int], start: int, eos_id: int | None) -> list[int]:
    """Drop what a template appends after the answer's end-of-turn (e.g. a trailing newline)."""
    if eos_id is None:
        return ids
    for index in range(start, len(ids)):
        if ids[index] == eos_id:
            return ids[: index + 1]
    return [*ids, eos_id]
