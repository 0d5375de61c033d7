"""Next-token choice for one batch row: greedy, or temperature + top-p with a seeded generator.

Every float a caller sends is checked before generation (``check_sampling``), and the arithmetic
is arranged so that no finite setting can produce NaN: the logits are shifted by their maximum
before dividing by the temperature, so a temperature of 1e-40 gives probability 1 to the top
token(s) instead of ``inf / inf``.
"""

from __future__ import annotations

import math
from typing import Any

from adapters_local.serving.generation import RequestError


class SamplingError(RequestError):
    """A sampling setting no rule gives a meaning to (NaN, infinities); fails its row only."""


class ModelOutputError(RuntimeError):
    """The model's scores for a row cannot be sampled from (NaN); fails that row only."""


def is_greedy(temperature: float | None) -> bool:
    return temperature is None or temperature <= 0.0


def check_sampling(temperature: float | None, top_p: float | None) -> None:
    """Refuse settings no rule can give a meaning to (NaN, infinities), naming the field."""
    for field, value in (("temperature", temperature), ("top_p", top_p)):
        if value is not None and not math.isfinite(value):
            raise SamplingError(f"{field} must be a finite number, got {value!r}", param=field)


def choose(logits: Any, temperature: float | None, top_p: float | None, generator: Any) -> int:
    """``logits`` is a 1-D float tensor over the vocabulary."""
    import torch

    scores = logits.double()
    top = scores.max()
    if not bool(torch.isfinite(top)) or bool(torch.isnan(scores).any()):
        raise ModelOutputError("the model produced non-finite scores for this row")
    if is_greedy(temperature) or (top_p is not None and top_p <= 0.0):
        return int(torch.argmax(scores).item())
    assert temperature is not None
    # (scores - top) <= 0, so dividing by a tiny temperature gives 0 or -inf, never NaN.
    probs = torch.softmax((scores - top) / temperature, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
        drop = cumulative - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    probs = probs / probs.sum()
    return int(torch.multinomial(probs.cpu(), 1, generator=generator).item())
