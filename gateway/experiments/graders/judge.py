"""``judge``: an LLM scores the answer with a rubric, through a gateway alias (so the judge's
own tokens and cost land in the ledger as a call of their own).

- ``single``: the judge reads the rubric, the conversation and the answer (and the reference
  answer, when there is one) and replies with a score from 0 to 10; the grade is score / 10.
- ``pairwise``: the judge compares the answer with a reference (the expected answer, else the
  answer of a ``baseline`` alias to the same prompt) and replies ``A``, ``B`` or ``TIE``. It is
  asked twice, with the two answers in both orders, and the grade is the mean of the two
  verdicts for the answer (win 1, tie 0.5, loss 0): a judge that favours a position gives one
  win and one loss for it, so order bias cancels instead of deciding the grade (Zheng et al.,
  "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", NeurIPS 2023, section 3.4).

The prompts are built by pure functions; the replies are parsed strictly, and a reply that is
neither a score nor a verdict is a ``GraderError``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Literal, Protocol

from gateway.experiments.graders.base import Chat, Grade, GraderError, Sample
from gateway.experiments.graders.text import NoReference, TextGrader

Mode = Literal["single", "pairwise"]
Verdict = Literal["A", "B", "TIE"]

DEFAULT_RUBRIC = "Is the answer correct, complete and helpful for the user's last message?"
_SCORE = re.compile(r"^\s*(?:score\s*[:=]\s*)?(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*\.?\s*$", re.I)
_VERDICT = re.compile(r"^\s*(?:verdict\s*[:=]\s*)?\[?\s*(A|B|TIE)\s*\]?\s*\.?\s*$", re.I)


class Complete(Protocol):
    """One chat completion through the gateway: the judge's (or the baseline's) answer text."""

    async def __call__(self, alias: str, chat: Chat, *, sample: Sample) -> str: ...


def _transcript(chat: Chat) -> str:
    return "\n".join(f"[{m['role']}]\n{m['content']}" for m in chat)


def single_prompt(rubric: str, prompt: Chat, answer: str, reference: str | None) -> Chat:
    parts = [
        f"Rubric: {rubric}",
        "Conversation:",
        "<<<CONVERSATION\n" + _transcript(prompt) + "\nCONVERSATION>>>",
    ]
    if reference is not None:
        parts.append("Reference answer:\n<<<REFERENCE\n" + reference + "\nREFERENCE>>>")
    parts += [
        "Answer to grade:\n<<<ANSWER\n" + answer + "\nANSWER>>>",
        "Grade the answer against the rubric. Reply with one number from 0 (worst) to 10 "
        "(best) and nothing else.",
    ]
    return [
        {"role": "system", "content": "You are a strict, impartial grader."},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def pairwise_prompt(rubric: str, prompt: Chat, first: str, second: str) -> Chat:
    body = "\n\n".join(
        [
            f"Rubric: {rubric}",
            "Conversation:",
            "<<<CONVERSATION\n" + _transcript(prompt) + "\nCONVERSATION>>>",
            "Answer A:\n<<<A\n" + first + "\nA>>>",
            "Answer B:\n<<<B\n" + second + "\nB>>>",
            "Which answer is better against the rubric? Do not let the order of the answers "
            "or their length sway you. Reply with exactly A, B or TIE.",
        ]
    )
    return [
        {"role": "system", "content": "You are a strict, impartial judge."},
        {"role": "user", "content": body},
    ]


def parse_score(reply: str) -> float:
    match = _SCORE.match(reply)
    if match is None or float(match.group(1)) > 10:
        raise GraderError("the judge's reply is not a score from 0 to 10")
    return float(match.group(1)) / 10


def parse_verdict(reply: str) -> Verdict:
    match = _VERDICT.match(reply)
    if match is None:
        raise GraderError("the judge's reply is not A, B or TIE")
    return match.group(1).upper()  # type: ignore[return-value]


def swapped_score(answer_first: Verdict, answer_second: Verdict) -> float:
    """The answer's mean result over both orders: shown as A, then shown as B."""
    won = {"A": 1.0, "TIE": 0.5, "B": 0.0}
    return (won[answer_first] + (1.0 - won[answer_second])) / 2


class JudgeGrader:
    def __init__(
        self,
        name: str,
        complete: Complete,
        *,
        alias: str,
        rubric: str = DEFAULT_RUBRIC,
        mode: Mode = "single",
        references: TextGrader | None = None,
        baseline: str | None = None,
    ) -> None:
        self.name = name
        self._complete = complete
        self.alias = alias
        self.rubric = rubric
        self.mode: Mode = mode
        self._references = references  # expected answers by prompt, when configured
        self._baseline = baseline

    def _reference(self, sample: Sample) -> str | None:
        if sample.expected is not None:
            return sample.expected
        if self._references is None:
            return None
        try:
            return self._references.reference(sample)
        except NoReference:
            return None

    async def grade(self, sample: Sample) -> Grade:
        reference = self._reference(sample)
        if self.mode == "single":
            chat = single_prompt(self.rubric, sample.prompt, sample.answer, reference)
            reply = await self._complete(self.alias, chat, sample=sample)
            score = parse_score(reply)
            return Grade(score, f"judge {score * 10:g}/10")
        if reference is None:
            if self._baseline is None:
                raise NoReference("pairwise: no reference answer and no baseline alias")
            reference = await self._complete(self._baseline, sample.prompt, sample=sample)
        rubric, prompt, answer = self.rubric, sample.prompt, sample.answer
        first, second = await asyncio.gather(
            self._ask(pairwise_prompt(rubric, prompt, answer, reference), sample),
            self._ask(pairwise_prompt(rubric, prompt, reference, answer), sample),
        )
        return Grade(swapped_score(first, second), f"answer as A: {first}; as B: {second}")

    async def _ask(self, chat: Chat, sample: Sample) -> Verdict:
        reply = await self._complete(self.alias, chat, sample=sample)
        return parse_verdict(reply)
