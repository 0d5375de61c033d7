"""A trained reward model as a scorer: ``score(prompt, answer) -> float``.

``RewardScorer.load(folder)`` rebuilds the base with its head and LoRA. For graders that are
named as ``python:module:function``, the module-level ``score`` (the raw reward) and ``grade``
(its logistic, in [0, 1], with the ``(prompt, answer, expected)`` signature the experiments'
python graders call) read the folder from ``STRATA_REWARD_MODEL`` and keep one loaded model per
folder; ``grader: reward:rm/`` is that grader with the variable set to ``rm/``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from adapters_local.data.messages import ChatMessage
from adapters_local.models.loading import ModelError
from adapters_local.preference.pairs import Pair, Prompt

ENV = "STRATA_REWARD_MODEL"


class RewardScorer:
    def __init__(self, model: Any, tokenizer: Any) -> None:
        self._model, self._tokenizer = model, tokenizer
        model.eval()

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> RewardScorer:
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification

        from adapters_local.models.loading import load_tokenizer
        from adapters_local.preference.reward import BASE_FILE

        marker = folder / BASE_FILE
        if not marker.is_file():
            raise ModelError(f"{folder} is not a reward model folder (no {BASE_FILE})")
        base = Path(marker.read_text().strip())
        tokenizer = load_tokenizer(folder)
        model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        return cls(PeftModel.from_pretrained(model, str(folder)).to(device), tokenizer)

    def scores(
        self, prompts: Sequence[Sequence[ChatMessage]], answers: Sequence[str]
    ) -> list[float]:
        import torch

        from adapters_local.preference.engine import prompt_text

        tok = self._tokenizer
        texts = [
            prompt_text(tok, p) + a + tok.eos_token for p, a in zip(prompts, answers, strict=True)
        ]
        device = next(self._model.parameters()).device
        out: list[float] = []
        for start in range(0, len(texts), 64):
            batch = tok(
                texts[start : start + 64], return_tensors="pt", padding=True,
                add_special_tokens=False, return_token_type_ids=False,
            ).to(device)  # fmt: skip
            with torch.no_grad():
                out += self._model(**batch).logits[:, 0].float().tolist()
        return out

    def score(self, prompt: Prompted, answer: str) -> float:
        return self.scores([turns_of(prompt)], [answer])[0]

    def pairwise_accuracy(self, pairs: Sequence[Pair]) -> float:
        prompts = [p.prompt for p in pairs]
        chosen = self.scores(prompts, [p.chosen for p in pairs])
        rejected = self.scores(prompts, [p.rejected for p in pairs])
        wins = sum(c > r for c, r in zip(chosen, rejected, strict=True))
        return wins / len(pairs) if pairs else 0.0

    def judge(self, prompts: Sequence[Prompt], outputs: Sequence[str]) -> list[float]:
        """``judge.Judge``: scores for held-out prompts."""
        return self.scores([p.messages for p in prompts], outputs)


Prompted = str | Sequence[ChatMessage] | Sequence[dict[str, str]]


def turns_of(prompt: Prompted) -> tuple[ChatMessage, ...]:
    """A prompt as text, chat messages, or a chat of ``{"role", "content"}`` dicts (what the
    experiments' python graders receive)."""
    if isinstance(prompt, str):
        return (ChatMessage("user", prompt),)
    turns = []
    for turn in prompt:
        if isinstance(turn, ChatMessage):
            turns.append(turn)
        else:
            role = turn["role"]
            if role not in ("system", "user", "assistant"):
                raise ValueError(f"unknown role {role!r}")
            turns.append(ChatMessage(role, turn["content"]))  # type: ignore[arg-type]
    return tuple(turns)


@lru_cache(maxsize=4)
def scorer_for(folder: str) -> RewardScorer:
    return RewardScorer.load(Path(folder))


def score(prompt: Prompted, answer: str) -> float:
    """The reward (a logit, unbounded) of ``answer`` to ``prompt`` by the reward model in
    ``STRATA_REWARD_MODEL``."""
    folder = os.environ.get(ENV)
    if not folder:
        raise ModelError(f"{ENV} names no reward model folder")
    return scorer_for(folder).score(prompt, answer)


def grade(prompt: Prompted, answer: str, expected: str | None = None) -> float:
    """A grader's [0, 1] score: the logistic of the reward, i.e. the Bradley-Terry probability
    that this answer beats one of reward 0 (``python:adapters_local.preference.scorer:grade``)."""
    return 1.0 / (1.0 + math.exp(-score(prompt, answer)))


def grade_with(folder: str, prompt: Prompted, answer: str, expected: str | None = None) -> float:
    """``grade`` by the reward model in ``folder`` (the experiments' ``reward:FOLDER`` grader)."""
    return 1.0 / (1.0 + math.exp(-scorer_for(folder).score(prompt, answer)))


def check_folder(folder: Path) -> None:
    """ModelError unless ``folder`` holds a reward model ``strata train reward`` wrote."""
    from adapters_local.preference.reward import BASE_FILE

    if not (folder / BASE_FILE).is_file():
        raise ModelError(f"{folder} is not a reward model folder (no {BASE_FILE})")
