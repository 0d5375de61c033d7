"""Streaming validation of a JSONL dataset: one record in memory at a time.

``DatasetScan`` yields a ``Problem`` for every broken line as it reads, and keeps running counts
(records, estimated tokens) whose memory does not grow with the file. Limits that concern the whole
file (record counts) are checked once the last line has been read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from customize.catalog import token_estimate
from customize.datasets.formats import DatasetSpec
from customize.datasets.records import text_length

# A record longer than this is reported and skipped rather than parsed: it bounds the memory one
# line can take, and is far beyond any per-record token limit Bedrock documents.
MAX_LINE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    line: int | None  # None for problems of the whole file
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason


@dataclass
class DatasetStats:
    lines: int = 0
    records: int = 0
    valid_records: int = 0
    bytes: int = 0
    estimated_tokens: int = 0
    max_record_tokens: int = 0
    max_record_line: int | None = None
    problems: int = 0
    over_token_limit: int = 0

    def as_dict(self) -> dict[str, int | None]:
        return {
            "lines": self.lines,
            "records": self.records,
            "valid_records": self.valid_records,
            "bytes": self.bytes,
            "estimated_tokens": self.estimated_tokens,
            "max_record_tokens": self.max_record_tokens,
            "max_record_line": self.max_record_line,
            "problems": self.problems,
            "over_token_limit": self.over_token_limit,
        }


def estimate_tokens(chars: int, chars_per_token: float) -> int:
    return math.ceil(chars / chars_per_token) if chars else 0


class DatasetScan:
    """Iterate to get problems in line order; read ``stats`` after iteration ends."""

    def __init__(self, path: Path, spec: DatasetSpec) -> None:
        self.path = path
        self.spec = spec
        self.stats = DatasetStats()
        self._chars_per_token = token_estimate().chars_per_token

    def __iter__(self) -> Iterator[Problem]:
        for problem in self._scan():
            self.stats.problems += 1
            yield problem

    def _scan(self) -> Iterator[Problem]:
        with self.path.open("rb") as handle:
            lineno = 0
            while raw := handle.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                self.stats.lines = lineno
                self.stats.bytes += len(raw)
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    self.stats.records += 1
                    self.stats.bytes += _skip_rest_of_line(handle)
                    reason = f"record is longer than {MAX_LINE_BYTES:,} bytes (not parsed)"
                    yield Problem(lineno, reason)
                    continue
                yield from self._line(lineno, raw)
        yield from self._file_limits()

    def _line(self, lineno: int, raw: bytes) -> Iterator[Problem]:
        if not raw.strip():
            yield Problem(lineno, "empty line (each line must hold one JSON record)")
            return
        self.stats.records += 1
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            yield Problem(lineno, f"invalid JSON: {error}")
            return
        reasons = self.spec.check(record)
        tokens = estimate_tokens(text_length(record), self._chars_per_token)
        self.stats.estimated_tokens += tokens
        if tokens > self.stats.max_record_tokens:
            self.stats.max_record_tokens, self.stats.max_record_line = tokens, lineno
        limit = self.spec.limits.max_tokens_per_record if self.spec.limits else None
        if limit is not None and tokens > limit:
            self.stats.over_token_limit += 1
            reasons = [*reasons, f"about {tokens} tokens, over the {limit}-token limit per record"]
        if not reasons:
            self.stats.valid_records += 1
        for reason in reasons:
            yield Problem(lineno, reason)

    def _file_limits(self) -> Iterator[Problem]:
        limits = self.spec.limits
        count = self.stats.records
        if count == 0:
            yield Problem(None, "the file has no records")
            return
        if limits is None:
            return
        if limits.min_records is not None and count < limits.min_records:
            yield Problem(None, f"{count} records, fewer than the minimum of {limits.min_records}")
        if limits.max_records is not None and count > limits.max_records:
            yield Problem(None, f"{count} records, more than the maximum of {limits.max_records}")


def _skip_rest_of_line(handle: BinaryIO) -> int:
    """Read past the end of an over-long line in fixed chunks; returns the bytes skipped."""
    skipped = 0
    while chunk := handle.readline(_CHUNK):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped
