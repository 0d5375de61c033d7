"""Held-out splits: one part picks the checkpoint (validation), a disjoint part scores it (test).

Scoring on the data that chose the checkpoint flatters the result, so the two never overlap.
Records with the same prompt always land on the same side: a duplicated example would otherwise
be trained on and scored at once.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from adapters_local.data.records import Record

MIN_HELD_OUT = 4  # below this a carved split measures nothing; train on everything instead
MAX_HELD_OUT = 1000


@dataclass(frozen=True)
class Splits:
    train: list[Record]
    validation: list[Record]
    test: list[Record]
    validation_source: str
    test_source: str


def _key(record: Record) -> str:
    text = "\x00".join(f"{m.role}\x01{m.content}" for m in record.messages)
    return hashlib.sha256(text.encode()).hexdigest()


def split_off(
    records: Sequence[Record], fraction: float, seed: int, *, limit: int = MAX_HELD_OUT
) -> tuple[list[Record], list[Record]]:
    """(kept, held): about ``fraction`` of the prompts (at most ``limit`` records) held out."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(_key(record), []).append(record)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    wanted = min(limit, round(len(records) * fraction))
    held: list[Record] = []
    kept: list[Record] = []
    for key in keys:
        target = held if len(held) < wanted else kept
        target.extend(groups[key])
    return kept, held


def make_splits(
    train: Sequence[Record],
    eval_records: Sequence[Record] | None,
    test_records: Sequence[Record] | None,
    *,
    holdout: float,
    seed: int,
    names: tuple[str, str, str],
) -> Splits:
    """``names``: the train, eval and test files, for the report."""
    train_name, eval_name, test_name = names
    kept = list(train)
    if eval_records is None:
        kept, held = split_off(train, holdout, seed)
        if len(held) < MIN_HELD_OUT:
            return Splits(list(train), [], [], "none (too little data)", "none")
        source = f"carved from {train_name}"
    else:
        held, source = list(eval_records), eval_name
    if test_records is not None:
        return Splits(kept, held, list(test_records), source, test_name)
    validation, test = split_off(held, 0.5, seed + 1)
    return Splits(kept, validation, test, f"{source} (half)", f"{source} (other half)")
