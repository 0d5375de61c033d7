"""Dataset records to packed training rows, in an order fixed by (seed, epoch) for resuming."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from adapters_local.data.chat_format import training_example
from adapters_local.data.packing import Example, PackedRow, pack
from adapters_local.data.records import Record


@dataclass(frozen=True)
class PackedData:
    rows: list[PackedRow]
    examples: int
    tokens: int  # real (non-padding) tokens
    padding_fraction: float


def pack_records(tokenizer: Any, records: Sequence[Record], row_len: int) -> PackedData:
    examples: list[Example] = [training_example(tokenizer, r.messages, r.answer) for r in records]
    rows = pack(examples, row_len, int(tokenizer.pad_token_id))
    tokens = sum(min(len(e.input_ids), row_len) for e in examples)
    total = len(rows) * row_len
    return PackedData(rows, len(examples), tokens, 1.0 - tokens / total if total else 0.0)


def steps_per_epoch(data: PackedData, rows_per_step: int, world_size: int = 1) -> int:
    return max(1, math.ceil(len(data.rows) / (rows_per_step * world_size)))


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    order = list(range(count))
    random.Random(seed * 7919 + epoch).shuffle(order)
    return order


def step_batches(
    data: PackedData,
    rows_per_step: int,
    seed: int,
    start_step: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[list[PackedRow]]:
    """Endless row batches, one per optimizer step, starting at ``start_step``.

    Under data parallelism each rank takes every ``world_size``-th row of the step's slice.
    """
    per_epoch = steps_per_epoch(data, rows_per_step, world_size)
    step = start_step
    while True:
        epoch, index = divmod(step, per_epoch)
        order = epoch_order(len(data.rows), seed, epoch)
        span = rows_per_step * world_size
        chosen = order[index * span : (index + 1) * span]
        mine = chosen[rank::world_size] or chosen[:1]
        yield [data.rows[i] for i in mine]
        step += 1


def to_tensors(rows: Sequence[PackedRow], device: str) -> tuple[Any, Any, Any]:
    import torch

    return (
        torch.tensor([r.input_ids for r in rows], device=device),
        torch.tensor([r.labels for r in rows], device=device),
        torch.tensor([r.position_ids for r in rows], device=device),
    )
