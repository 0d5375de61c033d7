"""Chat messages to prompt ids, off the engine thread, refusing prompts over the context.

Tokenizing a 4 MB prompt takes seconds; done on the engine's worker thread it would stall every
request in the batch. ``PromptEncoder`` runs it on a few threads of its own (Hugging Face's Rust
tokenizer releases the GIL), and refuses a prompt with ``PromptTooLong`` before it reaches the
engine. A prompt much longer than the context is refused after tokenizing only a prefix: no token
is longer than the longest vocabulary entry, so a prefix of ``(context + 1) * longest``
characters that already has more tokens than the context proves the whole prompt does too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adapters_local.data.chat_format import UnsafeContentError, encode_turns, render
from adapters_local.serving.generation import Failed, PromptTooLong, RequestError
from adapters_local.serving.rows import Job, end_job


def longest_token_chars(tokenizer: Any) -> int:
    vocabulary = tokenizer.get_vocab()
    return max((len(token) for token in vocabulary), default=1) or 1


class PromptEncoder:
    def __init__(
        self, tokenizer: Any, context_length: int, ready: Callable[[Job], None], workers: int = 2
    ) -> None:
        self._tokenizer = tokenizer
        self._context = context_length
        self._longest = longest_token_chars(tokenizer)
        self._ready = ready
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="strata-local-tokenize")

    def submit(self, job: Job) -> None:
        """Tokenize ``job`` in the background, then hand it to ``ready`` (or fail it)."""
        self._pool.submit(self._encode, job)

    def close(self) -> None:
        """Finish what was submitted (each job then reaches ``ready`` or fails)."""
        self._pool.shutdown(wait=True)

    def encode(self, job: Job) -> list[int]:
        turns = [{"role": m.role, "content": m.content} for m in job.request.messages]
        self._refuse_from_prefix(turns)
        try:
            ids = encode_turns(self._tokenizer, turns, add_generation_prompt=True)
        except UnsafeContentError as exc:
            raise RequestError(f"messages: {exc}", param="messages") from None
        if len(ids) >= self._context:  # at least one new token must fit
            raise PromptTooLong(len(ids), self._context)
        return ids

    def _encode(self, job: Job) -> None:
        if job.cancelled.is_set():
            return
        try:
            job.prompt = self.encode(job)
        except Exception as exc:
            end_job(job, Failed(exc))
            return
        self._ready(job)

    def _refuse_from_prefix(self, turns: list[dict[str, str]]) -> None:
        text = render(self._tokenizer, turns, add_generation_prompt=True)
        # Normalizers may shorten text a little (NFC composes accents); the factor covers that.
        limit = (self._context + 1) * self._longest * 4
        if len(text) <= limit:
            return
        prefix = list(self._tokenizer(text[:limit], add_special_tokens=False)["input_ids"])
        if len(prefix) > self._context:
            raise PromptTooLong(len(prefix), self._context, at_least=True)
