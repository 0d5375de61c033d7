"""A cheap bound on a local model's prompt, checked on the event loop before the engine sees it.

Exact token counts need the tokenizer on the engine's thread; a 4 MB prompt tokenised there
stalled every other request. But no ordinary (non-special) token covers more characters than
the longest one in the vocabulary, so a prompt of ``C * context + 1`` characters or more cannot
fit, whatever its text: those are refused at once. Prompts under the bound go to the engine,
which counts exactly (``PromptTooLong``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters_local.serving.generation import GenerationRequest, InferenceEngine
from gateway.errors import ContextLengthExceeded

log = logging.getLogger("strata.local")

# Tokenizers report this (or larger) when they do not know the model's context.
_UNKNOWN_CONTEXT = 1 << 30


@dataclass(frozen=True)
class PromptBound:
    context_length: int
    max_chars_per_token: int

    def check(self, request: GenerationRequest) -> None:
        chars = sum(len(m.content) for m in request.messages)
        at_least = -(-chars // self.max_chars_per_token)
        if at_least > self.context_length:
            raise too_long(at_least, self.context_length, exact=False)


def too_long(prompt_tokens: int, context_length: int, *, exact: bool) -> ContextLengthExceeded:
    count = f"{prompt_tokens}" if exact else f"at least {prompt_tokens}"
    return ContextLengthExceeded(
        f"This model's maximum context length is {context_length} tokens; the prompt is "
        f"{count} tokens. Shorten the messages.",
        param="messages",
    )


def prompt_bound(engine: InferenceEngine) -> PromptBound | None:
    """The bound for ``engine``, or None when it exposes no tokenizer (a scripted engine)."""
    tokenizer: Any = getattr(engine, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
        return None
    context = _context_length(engine, tokenizer)
    if context is None:
        return None
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    # Token strings are never shorter than the text they decode to (byte-level BPE spells a
    # byte as one character, byte-fallback pieces as "<0x41>"), so this overestimates: safe.
    longest = max((len(t) for t in tokenizer.get_vocab() if t not in special), default=1)
    return PromptBound(context, max(1, longest))


def _context_length(engine: InferenceEngine, tokenizer: Any) -> int | None:
    stated = getattr(engine, "context_length", None)
    if isinstance(stated, int) and stated > 0:
        return stated
    candidates = []
    max_length = getattr(tokenizer, "model_max_length", None)
    if isinstance(max_length, int) and 0 < max_length < _UNKNOWN_CONTEXT:
        candidates.append(max_length)
    folder = getattr(tokenizer, "name_or_path", "")
    config = Path(str(folder)) / "config.json"
    try:
        positions = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError):
        positions = None
    if isinstance(positions, int) and positions > 0:
        candidates.append(positions)
    return min(candidates) if candidates else None
