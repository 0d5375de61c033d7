"""Media rules that span blocks, messages or the whole dataset (the per-block shape is records.py).

Nova takes images or videos in user turns, with limits a single block cannot show: at most one
video in a record, image records and video records never mixed in one dataset, every media object
in the dataset's own bucket, and no media at all for a text-only model such as Nova Micro
(Nova user guide, "Preparing data for fine-tuning Understanding models";
model-customization-prepare).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from customize.catalog import MediaKind


@dataclass(frozen=True)
class MediaRef:
    kind: MediaKind
    uri: str | None
    where: str


def media_refs(record: object) -> Iterator[MediaRef]:
    """Every image/video block of a bedrock-conversation-2024 record, with its field path."""
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return
    for m_index, message in enumerate(record["messages"]):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for b_index, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            for kind in ("image", "video"):
                if kind in block:
                    yield MediaRef(
                        kind,
                        _uri(block[kind]),
                        f"messages[{m_index}].content[{b_index}].{kind}",
                    )


def _uri(media: Any) -> str | None:
    source = media.get("source") if isinstance(media, dict) else None
    location = source.get("s3Location") if isinstance(source, dict) else None
    uri = location.get("uri") if isinstance(location, dict) else None
    return uri if isinstance(uri, str) else None


def _bucket(uri: str) -> str:
    return uri.removeprefix("s3://").split("/", 1)[0]


class MediaRules:
    """Checks records one at a time, remembering which media kind the dataset uses."""

    def __init__(self, allowed: tuple[MediaKind, ...], model: str, bucket: str | None) -> None:
        self._allowed = allowed
        self._model = model
        self._bucket = bucket
        self._first: tuple[MediaKind, int] | None = None  # the dataset's media kind, and its line

    def check(self, lineno: int, record: object) -> list[str]:
        refs = list(media_refs(record))
        if not refs:
            return []
        problems: list[str] = []
        for ref in refs:
            if ref.kind not in self._allowed:
                takes = "text only" if not self._allowed else " and ".join(self._allowed)
                problems.append(f"{ref.where}: {self._model} takes {takes}, not {ref.kind}s")
            elif ref.uri and self._bucket and _bucket(ref.uri) != self._bucket:
                problems.append(
                    f"{ref.where}.source.s3Location.uri is in bucket {_bucket(ref.uri)!r}, not the "
                    f"dataset's bucket {self._bucket!r}; Bedrock reads media only from there"
                )
        videos = sum(1 for ref in refs if ref.kind == "video")
        if videos > 1:
            problems.append(f"the record has {videos} videos; a record may hold at most one")
        kinds = {ref.kind for ref in refs if ref.kind in self._allowed}
        if self._first is None and len(kinds) == 1:
            self._first = (next(iter(kinds)), lineno)
        elif self._first is not None:
            other = kinds - {self._first[0]}
            if other:
                problems.append(
                    f"the record has {next(iter(other))}s but line {self._first[1]} has "
                    f"{self._first[0]}s; a dataset holds image records or video records, not both"
                )
        return problems
