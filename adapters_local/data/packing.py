"""Sequence packing: several tokenized examples share one row, so no step is spent on padding.

Each example's positions restart at 0. With ``attention_mask=None`` and no cache, transformers
reads the restarts in ``position_ids`` as packed-sequence boundaries and builds a block-diagonal
causal mask, so packed examples never attend to one another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """Token ids plus labels (``IGNORE`` on the prompt: loss only on the answer)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError("input_ids and labels differ in length")

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass(frozen=True)
class PackedRow:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    used: int  # tokens that belong to examples; the rest is padding


def pack(examples: Iterable[Example], row_len: int, pad_id: int) -> list[PackedRow]:
    """First-fit-decreasing packing into rows of exactly ``row_len`` tokens.

    Examples longer than ``row_len`` keep their first ``row_len`` tokens.
    """
    ordered = sorted(
        (_truncate(e, row_len) for e in examples), key=lambda e: len(e.input_ids), reverse=True
    )
    rows: list[list[Example]] = []
    room: list[int] = []
    for example in ordered:
        size = len(example.input_ids)
        for index, free in enumerate(room):
            if size <= free:
                rows[index].append(example)
                room[index] -= size
                break
        else:
            rows.append([example])
            room.append(row_len - size)
    return [_assemble(row, row_len, pad_id) for row in rows]


def _truncate(example: Example, row_len: int) -> Example:
    if len(example.input_ids) <= row_len:
        return example
    return Example(example.input_ids[:row_len], example.labels[:row_len])


def _assemble(examples: Sequence[Example], row_len: int, pad_id: int) -> PackedRow:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for example in examples:
        ids.extend(example.input_ids)
        # The first token of each example is never a target: the token before it belongs to
        # another example.
        labels.extend((IGNORE, *example.labels[1:]))
        positions.extend(range(len(example.input_ids)))
    used = len(ids)
    padding = row_len - used
    ids.extend([pad_id] * padding)
    labels.extend([IGNORE] * padding)
    positions.extend(range(padding))
    return PackedRow(ids, labels, positions, used)


def padding_fraction(rows: Sequence[PackedRow], examples: Sequence[Example]) -> float:
    total = sum(len(r.input_ids) for r in rows)
    used = sum(len(e.input_ids) for e in examples)
    return 1.0 - used / total if total else 0.0
