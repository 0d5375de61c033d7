"""Parallel composition in the running batch: one request, several lanes, one next token.

A request for ``parallel:a+b`` takes one batch lane per member: the same tokens, each lane routed
to its own adapter (and with its own KV cache, since the adapters' hidden states differ), all in
the batch's one forward pass beside every other row. The row's next-token logits are the
weighted mean of its lanes' logits; the sampled token is then fed to every lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def owners(widths: Sequence[int]) -> list[int]:
    """The row each lane belongs to, for rows of ``widths`` lanes laid out one after another."""
    return [row for row, width in enumerate(widths) for _ in range(width)]


def combine(lane_logits: Any, widths: Sequence[int], weights: Sequence[float]) -> Any:
    """[rows, vocab] logits: each row's weighted sum of its lanes' logits.

    ``weights`` has one entry per lane (a row's weights sum to 1). When every row has a single
    lane the logits are returned as they are, so plain batches are untouched bit for bit.
    """
    import torch

    if all(width == 1 for width in widths):
        return lane_logits
    index = torch.tensor(owners(widths), device=lane_logits.device)
    scale = torch.tensor(weights, dtype=lane_logits.dtype, device=lane_logits.device)
    out = lane_logits.new_zeros((len(widths), lane_logits.shape[-1]))
    return out.index_add_(0, index, lane_logits * scale[:, None])
