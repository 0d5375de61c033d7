"""Streaming validation of a JSONL dataset: one record in memory at a time.

``DatasetScan`` yields a ``Problem`` for every broken line as it reads, and keeps running counts
(records, estimated tokens) whose memory does not grow with the file. Limits that concern the whole
file (record counts, file size) are checked once the last line has been read. The dataset may be a
local file or any binary stream (an S3 object's body), read the same bounded way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from customize.catalog import token_estimate
from customize.datasets.formats import DatasetSpec
from customize.datasets.media import MediaRules
from customize.datasets.records import text_length

Opener = Callable[[], AbstractContextManager[BinaryIO]]

# A record longer than this is reported and skipped rather than parsed: it bounds the memory one
# line can take, and is far beyond any per-record token limit Bedrock documents.
MAX_LINE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    line: int | None  # None for problems of the whole file
    reason: str
    warning: bool = False  # reported, but the dataset may still be used

    def __str__(self) -> str:
        text = f"line {self.line}: {self.reason}" if self.line is not None else self.reason
        return f"warning: {text}" if self.warning else text


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
    warnings: int = 0
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
            "warnings": self.warnings,
            "over_token_limit": self.over_token_limit,
        }


def estimate_tokens(chars: int, chars_per_token: float) -> int:
    return math.ceil(chars / chars_per_token) if chars else 0


def _utf16(head: bytes) -> bool:
    return head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:200]


class _Pairs:
    """``object_pairs_hook`` that notes keys given twice in one object (JSON keeps the last)."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                self.duplicates.append(key)
            seen.add(key)
        return dict(pairs)


class DatasetScan:
    """Iterate to get problems in line order; read ``stats`` after iteration ends."""

    def __init__(
        self, source: Path | Opener, spec: DatasetSpec, *, name: str | None = None
    ) -> None:
        self._open: Opener = (lambda: source.open("rb")) if isinstance(source, Path) else source
        self.name = name or (source.name if isinstance(source, Path) else "dataset")
        self.spec = spec
        self.stats = DatasetStats()
        self._chars_per_token = token_estimate().chars_per_token
        self._media = (
            MediaRules(spec.media, spec.family_display, spec.bucket)
            if spec.media is not None
            else None
        )

    def __iter__(self) -> Iterator[Problem]:
        for problem in self._scan():
            if problem.warning:
                self.stats.warnings += 1
            else:
                self.stats.problems += 1
            yield problem

    def _scan(self) -> Iterator[Problem]:
        with self._open() as handle:
            lineno = 0
            while raw := handle.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                offset = self.stats.bytes
                self.stats.lines = lineno
                self.stats.bytes += len(raw)
                if lineno == 1 and (encoding := _encoding_problem(raw)) is not None:
                    yield encoding
                    if _utf16(raw):
                        return  # every later line would be noise
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    self.stats.records += 1
                    self.stats.bytes += _skip_rest_of_line(handle)
                    reason = f"record is longer than {MAX_LINE_BYTES:,} bytes (not parsed)"
                    yield Problem(lineno, reason)
                    continue
                yield from self._line(lineno, raw, offset)
        yield from self._file_limits()

    def _line(self, lineno: int, raw: bytes, offset: int) -> Iterator[Problem]:
        if not raw.strip():
            yield Problem(
                lineno, "empty line: skipped (convert drops it too); remove it", warning=True
            )
            return
        self.stats.records += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield Problem(
                lineno,
                f"not valid UTF-8: byte 0x{raw[error.start]:02x} at byte offset "
                f"{offset + error.start:,} of the file (column {error.start + 1} of this line); "
                "Bedrock reads UTF-8 only: re-save the file as UTF-8",
            )
            return
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            yield Problem(lineno, f"invalid JSON: {error}")
            return
        pairs = _Pairs()
        json.loads(text, object_pairs_hook=pairs)
        reasons = [
            f"key {key!r} appears twice in one object (only the last value would be used)"
            for key in dict.fromkeys(pairs.duplicates)
        ]
        reasons += self.spec.check(record)
        if self._media is not None:
            reasons += self._media.check(lineno, record)
        tokens = estimate_tokens(text_length(record), self._chars_per_token)
        self.stats.estimated_tokens += tokens
        if tokens > self.stats.max_record_tokens:
            self.stats.max_record_tokens, self.stats.max_record_line = tokens, lineno
        limit = self.spec.max_tokens_per_record
        if limit is not None and tokens > limit:
            self.stats.over_token_limit += 1
            reasons = [*reasons, f"about {tokens} tokens, over the {limit}-token limit per record"]
        if not reasons:
            self.stats.valid_records += 1
        for reason in reasons:
            yield Problem(lineno, reason)

    def _doubt(self, field: str) -> str:
        limits = self.spec.limits
        if limits is not None and field in limits.unconfirmed:
            return f" (this limit is not confirmed against {limits.source})"
        return f" ({self.spec.record_rule_note})" if self.spec.record_rule_note else ""

    def _file_limits(self) -> Iterator[Problem]:
        spec = self.spec
        count = self.stats.records
        if count == 0:
            yield Problem(None, "the file has no records")
            return
        if spec.max_bytes is not None and self.stats.bytes > spec.max_bytes:
            yield Problem(
                None,
                f"{self.stats.bytes:,} bytes, over the {spec.max_bytes:,}-byte limit for "
                f"{spec.role} data (model-training-validation-requirements)",
            )
        if spec.min_records is not None and count < spec.min_records:
            yield Problem(
                None,
                f"{count} records, fewer than the minimum of {spec.min_records}"
                + self._doubt("min_records"),
            )
        if spec.max_records is not None and count > spec.max_records:
            yield Problem(
                None,
                f"{count} records, more than the maximum of {spec.max_records}"
                + self._doubt("max_records"),
            )


def _encoding_problem(first: bytes) -> Problem | None:
    if _utf16(first):
        return Problem(
            1,
            "the file is UTF-16 encoded (byte-order mark or NUL bytes at its start); Bedrock "
            "reads UTF-8 only: convert it, e.g. iconv -f UTF-16 -t UTF-8 IN > OUT",
        )
    if first.startswith(b"\xef\xbb\xbf"):
        return Problem(
            1,
            "the file starts with a UTF-8 byte-order mark (BOM), which Bedrock's JSONL reader "
            "refuses; remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE",
        )
    return None


def _skip_rest_of_line(handle: BinaryIO) -> int:
    """Read past the end of an over-long line in fixed chunks; returns the bytes skipped."""
    skipped = 0
    while chunk := handle.readline(_CHUNK):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped
