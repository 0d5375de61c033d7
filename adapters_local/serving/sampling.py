"""Next-token choice for one batch row: greedy, or temperature + top-p with a seeded generator."""

from __future__ import annotations

from typing import Any


def is_greedy(temperature: float | None) -> bool:
    return temperature is None or temperature <= 0.0


def choose(logits: Any, temperature: float | None, top_p: float | None, generator: Any) -> int:
    """``logits`` is a 1-D float tensor over the vocabulary."""
    import torch

    if is_greedy(temperature):
        return int(torch.argmax(logits).item())
    assert temperature is not None
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
        drop = cumulative - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    probs = probs / probs.sum()
    return int(torch.multinomial(probs.cpu(), 1, generator=generator).item())
