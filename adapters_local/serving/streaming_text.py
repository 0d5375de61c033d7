"""Token ids to text deltas, and stop strings, for streaming one row of a generation batch.

Decoding one token at a time is wrong for byte-level BPE (a multi-byte character spans several
tokens, and a lone piece decodes to U+FFFD) and for SentencePiece (a token's leading space is lost
when decoded alone). ``IncrementalDecoder`` decodes a short window and emits only the new, complete
suffix; ``StopMatcher`` withholds text that may turn out to start a stop string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0  # start of the window decoded for context
        self._read = 0  # end of what has already been emitted

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        seen = self._decode(self._ids[self._prefix : self._read])
        now = self._decode(self._ids[self._prefix :])
        if len(now) > len(seen) and not now.endswith(REPLACEMENT):
            self._prefix, self._read = self._read, len(self._ids)
            return now[len(seen) :]
        return ""

    def flush(self) -> str:
        """Whatever is still withheld (an incomplete character comes out as U+FFFD)."""
        seen = self._decode(self._ids[self._prefix : self._read])
        now = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return now[len(seen) :] if len(now) > len(seen) else ""


class StopMatcher:
    """Feeds text through; reports the text safe to emit and whether a stop string was hit."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        buffer = self._held + text
        hits = [(buffer.find(s), s) for s in self._stops if s in buffer]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(index for index, _ in hits)]
        keep = self._longest_partial(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _longest_partial(self, buffer: str) -> int:
        """Length of the longest suffix of ``buffer`` that is a proper prefix of a stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:size]):
                    best = size
                    break
        return best
