"""The grader seam: a ``Sample`` (one call's prompt and answer, in memory only) in, a ``Grade``
out. Every grader kind (text match, JSON schema, a Python function, an LLM judge) is one small
class with ``async def grade(sample) -> Grade``.

A grader raises ``GraderError`` (or anything else) when it cannot score; the caller counts and
logs that and never lets it reach the user's request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.canonical import ConverseRequest

Chat = list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": str}, …]


class GraderError(Exception):
    """A grader could not score a sample (no expected answer, a judge that did not answer)."""


@dataclass(frozen=True)
class Sample:
    request_id: str
    prompt: Chat  # the conversation up to the answer
    answer: str
    expected: str | None = None  # a reference answer, when the caller has one (replay rows)
    alias: str | None = None
    variant: str | None = None
    tenant: str | None = None  # whose call it was: a judge's own call is billed to them

    @property
    def key(self) -> str:
        """What expected-answer datasets are keyed by: the last user turn's text."""
        return prompt_key(self.prompt)


@dataclass(frozen=True)
class Grade:
    score: float  # in [0, 1]
    # A short reason, never the prompt or the answer: grades are stored beside the ledger,
    # which keeps no text.
    detail: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise GraderError(f"a grade must be in [0, 1], got {self.score!r}")


class Grader(Protocol):
    name: str

    async def grade(self, sample: Sample) -> Grade: ...


def prompt_key(prompt: Chat) -> str:
    for message in reversed(prompt):
        if message["role"] == "user":
            return message["content"].strip()
    return ""


def chat_of(request: ConverseRequest) -> Chat:
    """A request's text as a plain chat (non-text blocks are left out)."""
    chat: Chat = []
    system = request.system_text()
    if system:
        chat.append({"role": "system", "content": system})
    for message in request.messages:
        text = "".join(block.text or "" for block in message.content)
        chat.append({"role": message.role, "content": text})
    return chat
