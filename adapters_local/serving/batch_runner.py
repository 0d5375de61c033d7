"""Continuous batching: rows join the running batch at the next decode step and leave as they end.

A decode step feeds one token per row through one forward pass, each row routed to its own
adapter (``ServedModel.forward``). Newcomers are prefilled together in a forward of their own,
and their KV cache is merged into the running one (``kv_batch``), so a short request that arrives
while a long one decodes starts at once instead of waiting for the long one to finish.

A row is one or more *lanes* (cache rows): a parallel composition decodes one lane per member in
the same forward, and its lanes' logits are combined into the row's (``compose.parallel``).
Lanes lie row after row, so the cache, mask and positions below are per lane, the logits per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters_local.compose.parallel import combine
from adapters_local.serving.kv_batch import merge, trim_padding
from adapters_local.serving.rows import Job, Row, fail_row, make_row, step_row
from adapters_local.serving.served_model import ServedModel


class RunningBatch:
    """The rows decoding now and their shared cache.

    Only the engine's worker thread uses it, inside ``torch.inference_mode()``.
    """

    def __init__(self, model: ServedModel) -> None:
        self._model = model
        self._eos = model.eos_ids()
        self.rows: list[Row] = []
        self._cache: Any = None
        self._mask: Any = None  # [lanes, cached columns]: 1 where a lane has a real token
        self._positions: Any = None  # [lanes]: the position of each lane's next token
        self._logits: Any = None  # [rows, vocab]: the scores each row samples its next token from

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def logits(self) -> Any:
        """[rows, vocab]: the scores each row's next token is chosen from (combined over a
        parallel composition's lanes)."""
        return self._logits

    def admit(self, jobs: Sequence[Job]) -> int:
        """Prefill ``jobs`` and add them to the batch; returns how many rows joined.

        A failure of the prefill forward fails those newcomers only; the rows already decoding
        go on.
        """
        fresh = [
            r for r in (make_row(self._model, j) for j in jobs if not j.cancelled.is_set()) if r
        ]
        if not fresh:
            return 0
        try:
            self._prefill(fresh)
        except Exception as exc:
            for row in fresh:
                fail_row(row, exc)
            return 0
        return len(fresh)

    def step(self) -> None:
        """Sample one token for every row, drop the rows that ended, feed the rest one step."""
        import torch

        tokens = [step_row(row, self._logits[i], self._eos) for i, row in enumerate(self.rows)]
        keep = [i for i, t in enumerate(tokens) if t is not None]
        if len(keep) < len(self.rows):
            self._select(keep)
        if not self.rows:
            return
        device = self._model.device
        lane_tokens = [tokens[i] for i, row in zip(keep, self.rows, strict=True) for _ in row.lanes]
        step_ids = torch.tensor(lane_tokens, device=device).unsqueeze(-1)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(lane_tokens), 1))], dim=-1)
        try:
            self._logits = self._forward(
                step_ids, self._mask, self._positions.unsqueeze(-1), self._cache, self.rows
            )
        except Exception as exc:  # a failed forward leaves no consistent cache for any row
            for row in self.rows:
                fail_row(row, exc)
            self._select([])
            return
        self._positions = self._positions + 1

    def fail_all(self, error: BaseException) -> None:
        for row in self.rows:
            fail_row(row, error)
        self._select([])

    def _prefill(self, fresh: list[Row]) -> None:
        import torch
        from transformers import DynamicCache

        device = self._model.device
        pad = int(self._model.tokenizer.pad_token_id)
        width = max(len(r.prompt) for r in fresh)
        lanes = [r for r in fresh for _ in r.lanes]
        ids = torch.tensor(
            [[pad] * (width - len(r.prompt)) + r.prompt for r in lanes], device=device
        )
        mask = torch.tensor(
            [[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in lanes], device=device
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(ids, mask, positions, cache, fresh)
        next_positions = mask.sum(-1)
        if not self.rows:
            self._cache, self._mask, self._positions, self._logits = (
                cache,
                mask,
                next_positions,
                logits,
            )
        else:
            self._cache, self._mask = merge(self._cache, self._mask, cache, mask)
            self._positions = torch.cat([self._positions, next_positions])
            self._logits = torch.cat([self._logits, logits])
        self.rows.extend(fresh)

    def _forward(self, ids: Any, mask: Any, positions: Any, cache: Any, rows: list[Row]) -> Any:
        routes = [route for row in rows for route in row.lanes]
        lane_logits = self._model.forward(ids, mask, positions, cache, routes)
        weights = [w for row in rows for w in row.weights]
        return combine(lane_logits, [len(row.lanes) for row in rows], weights)

    def _select(self, keep: list[int]) -> None:
        if not keep:
            self.rows, self._cache, self._mask, self._positions, self._logits = (
                [],
                None,
                None,
                None,
                None,
            )
            return
        import torch

        starts, lane = [], 0
        for row in self.rows:
            starts.append(lane)
            lane += len(row.lanes)
        lanes = [starts[i] + j for i in keep for j in range(len(self.rows[i].lanes))]
        index = torch.tensor(lanes, device=self._model.device)
        self._cache.batch_select_indices(index)
        self._mask, self._positions = self._mask[index], self._positions[index]
        self._logits = self._logits[torch.tensor(keep, device=self._model.device)]
        self.rows = [self.rows[i] for i in keep]
        self._cache, self._mask = trim_padding(self._cache, self._mask)
