"""The held-out figures every preference report carries, measured by greedy decoding.

- ``style_rate``: answers in the preferred style (``pairs.styled``);
- ``exact_match``: answers equal to the task's answer once the style mark is removed (whether
  tuning kept the task, the SFT anchor's job);
- ``kl_to_reference``: the mean over prompts of the summed per-token KL(policy || reference)
  along the policy's own greedy answer, exact over the vocabulary at each position;
- ``win_rate``: how often a judge (a reward model or grader) scores the policy's answer above
  the reference's, ties counted as half.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from adapters_local.preference.pairs import Prompt, styled, unstyled
from adapters_local.training.evaluate import greedy_answers

Judge = Callable[[Sequence[Prompt], Sequence[str]], list[float]]
Reference = Callable[[], AbstractContextManager[Any]]


def answers(model: Any, tokenizer: Any, prompts: Sequence[Prompt]) -> list[str]:
    model.eval()
    return greedy_answers(model, tokenizer, [p.messages for p in prompts], max_new_tokens=24)


def style_rate(outputs: Sequence[str]) -> float:
    return sum(styled(a) for a in outputs) / len(outputs) if outputs else 0.0


def exact_match(prompts: Sequence[Prompt], outputs: Sequence[str]) -> float:
    if not prompts:
        return 0.0
    hits = sum(unstyled(a) == p.answer for p, a in zip(prompts, outputs, strict=True))
    return hits / len(prompts)


def figures(prompts: Sequence[Prompt], outputs: Sequence[str]) -> dict[str, float]:
    return {
        "preferred_style_rate": round(style_rate(outputs), 4),
        "task_exact_match": round(exact_match(prompts, outputs), 4),
    }


def _token_rows(
    tokenizer: Any, prompts: Sequence[Prompt], outputs: Sequence[str]
) -> Iterator[tuple[list[int], int]]:
    from adapters_local.preference.engine import prompt_text

    for prompt, output in zip(prompts, outputs, strict=True):
        head = tokenizer(prompt_text(tokenizer, prompt.messages), add_special_tokens=False)
        tail = tokenizer(output, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        yield list(head["input_ids"]) + list(tail), len(head["input_ids"])


def kl_to_reference(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    outputs: Sequence[str],
    reference: Reference,
) -> float:
    """Mean summed KL(policy || reference) over each answer's positions (nats per answer)."""
    import torch

    device = next(model.parameters()).device
    total = 0.0
    for ids, start in _token_rows(tokenizer, prompts, outputs):
        batch = torch.tensor([ids], device=device)
        with torch.no_grad():
            policy = torch.log_softmax(model(input_ids=batch).logits[0, start - 1 : -1], -1)
            with reference():
                ref = torch.log_softmax(model(input_ids=batch).logits[0, start - 1 : -1], -1)
        total += float((policy.exp() * (policy - ref)).sum())
    return round(total / max(1, len(prompts)), 5)


def win_rate(
    judge: Judge, prompts: Sequence[Prompt], policy: Sequence[str], reference: Sequence[str]
) -> float:
    ours, theirs = judge(prompts, policy), judge(prompts, reference)
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs, strict=True))
    return round(wins / max(1, len(prompts)), 4)


def match_judge(prompts: Sequence[Prompt], outputs: Sequence[str]) -> list[float]:
    """A dense programmatic reward: how much of the task answer the answer gets right
    (``difflib``'s similarity ratio of the two strings, style mark removed), in [0, 1]."""
    from difflib import SequenceMatcher

    return [
        SequenceMatcher(None, unstyled(a), p.answer).ratio()
        for p, a in zip(prompts, outputs, strict=True)
    ]


def style_judge(prompts: Sequence[Prompt], outputs: Sequence[str]) -> list[float]:
    """The synthetic task's programmatic grader: 1 for a correct answer in the preferred style,
    0.5 for a correct one without it, 0 otherwise."""
    return [
        (1.0 if styled(a) else 0.5) if unstyled(a) == p.answer else 0.0
        for p, a in zip(prompts, outputs, strict=True)
    ]
