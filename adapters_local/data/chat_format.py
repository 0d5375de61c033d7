"""Chat turns to token ids through the tokenizer's own chat template.

Works with any Hugging Face tokenizer that has a chat template (the built-in one has); the
template is rendered to text and then tokenized, which behaves the same on transformers 4 and 5.

Message content is data, never markup: text such as ``<|end|>`` inside a message must not become
the special token that ends a turn (a user could otherwise forge a system turn), nor may
``<tool_call>`` become Qwen's (non-special) added token. When a message contains the text of an
added token, the rendered prompt is cut at the message boundaries, and inside a message each such
text is tokenized as its first character plus the rest, so only the template makes added tokens.
"""

from __future__ import annotations

import re
import secrets
import weakref
from collections.abc import Sequence
from typing import Any

from adapters_local.data.messages import ChatMessage
from adapters_local.data.packing import IGNORE, Example


class UnsafeContentError(ValueError):
    """Message text holds a special token's text and the template hides where the message is."""


def _as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


# tokenizer -> (its added-token count, the pattern): built once, not once per example (packing
# 2,000 examples spent 0.5 s CPU rebuilding it).
_PATTERNS: weakref.WeakKeyDictionary[Any, tuple[int, re.Pattern[str] | None]] = (
    weakref.WeakKeyDictionary()
)


def added_token_pattern(tokenizer: Any) -> re.Pattern[str] | None:
    """Matches the texts the tokenizer turns into one added token wherever they appear."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    try:
        cached = _PATTERNS.get(tokenizer)
    except TypeError:  # not weak-referenceable or not hashable: build it every time
        return _pattern(decoder)
    if cached is not None and cached[0] == len(decoder):
        return cached[1]
    pattern = _pattern(decoder)
    _PATTERNS[tokenizer] = (len(decoder), pattern)
    return pattern


def _pattern(decoder: Any) -> re.Pattern[str] | None:
    texts = {str(getattr(t, "content", t)) for t in decoder.values()}
    # A one-character token cannot be cut in two; longest first, so "<|end|>" beats "<".
    texts = {t for t in texts if len(t) > 1}
    if not texts:
        return None
    return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))


def render(tokenizer: Any, turns: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the tokenizer has no chat template")
    return str(
        tokenizer.apply_chat_template(
            turns, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    )


def encode_turns(
    tokenizer: Any, turns: list[dict[str, str]], *, add_generation_prompt: bool
) -> list[int]:
    """Token ids of the rendered conversation, with message text never tokenized as markup."""
    text = render(tokenizer, turns, add_generation_prompt=add_generation_prompt)
    pattern = added_token_pattern(tokenizer)
    if pattern is None or not any(pattern.search(turn["content"]) for turn in turns):
        return _encode(tokenizer, text)
    marks = [f"\u2063strata{secrets.token_hex(8)}\u2063" for _ in turns]
    marked = render(
        tokenizer,
        [{**turn, "content": mark} for turn, mark in zip(turns, marks, strict=True)],
        add_generation_prompt=add_generation_prompt,
    )
    pieces = _split(marked, marks)
    contents = [turn["content"] for turn in turns]
    if pieces is None or _join(pieces, contents) != text:
        raise UnsafeContentError(
            "a message contains a special token's text, and this model's chat template "
            "changes message text, so it cannot be kept apart from the markup"
        )
    ids: list[int] = []
    for index, piece in enumerate(pieces):
        ids += _encode(tokenizer, piece)
        if index < len(contents):
            ids += encode_literal(tokenizer, contents[index], pattern)
    return ids


def encode_literal(tokenizer: Any, text: str, pattern: re.Pattern[str] | None) -> list[int]:
    """Token ids of ``text`` in which no added token's text becomes that token."""
    ids: list[int] = []
    position = 0
    while pattern is not None and (match := pattern.search(text, position)) is not None:
        # No added token starts before the leftmost match, and its first character alone is none:
        # the piece up to and including that character holds no whole added token.
        ids += _encode(tokenizer, text[position : match.start() + 1])
        position = match.start() + 1
    return ids + _encode(tokenizer, text[position:])


def _encode(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _split(marked: str, marks: list[str]) -> list[str] | None:
    """The template text around each mark, in order; None if a mark is missing or repeated."""
    pieces: list[str] = []
    rest = marked
    for mark in marks:
        if rest.count(mark) != 1:
            return None
        before, _, rest = rest.partition(mark)
        pieces.append(before)
    return [*pieces, rest]


def _join(pieces: list[str], contents: list[str]) -> str:
    return "".join(p + c for p, c in zip(pieces, [*contents, ""], strict=True))


def prompt_ids(tokenizer: Any, messages: Sequence[ChatMessage]) -> list[int]:
    """Token ids of the conversation followed by the assistant's turn opener."""
    return encode_turns(tokenizer, _as_dicts(messages), add_generation_prompt=True)


def training_example(tokenizer: Any, messages: Sequence[ChatMessage], answer: str) -> Example:
    """Prompt plus answer plus end-of-turn, with the loss on the answer tokens only."""
    prompt = prompt_ids(tokenizer, messages)
    full = encode_turns(
        tokenizer,
        [*_as_dicts(messages), {"role": "assistant", "content": answer}],
        add_generation_prompt=False,
    )
    if full[: len(prompt)] != prompt:
        # Some templates render the prompt differently once an answer follows; fall back to
        # prompt + answer + EOS, which is what generation produces anyway.
        answer_ids = encode_literal(tokenizer, answer, added_token_pattern(tokenizer))
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
