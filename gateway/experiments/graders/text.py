"""``exact``, ``contains`` and ``regex``: the answer against an expected answer, taken from the
sample (a replayed row) or looked up by prompt in a JSONL dataset (the last user turn is the
key; Bedrock's prompt/completion or messages formats)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from gateway.experiments.graders.base import Grade, GraderError, Sample

Match = Literal["exact", "contains", "regex"]


class NoReference(GraderError):
    """The sample's prompt has no expected answer: not scored (counted as skipped)."""


class TextGrader:
    def __init__(
        self,
        name: str,
        match: Match,
        expected: Mapping[str, str] | None = None,
        *,
        pattern: str | None = None,
        ignore_case: bool = False,
    ) -> None:
        self.name = name
        self.match: Match = match
        self._expected = dict(expected or {})
        self._flags = re.IGNORECASE if ignore_case else 0
        self._ignore_case = ignore_case
        try:
            self._pattern = re.compile(pattern, self._flags) if pattern is not None else None
        except re.error as exc:
            raise ValueError(f"pattern: not a regular expression: {exc}") from None

    def reference(self, sample: Sample) -> str:
        if sample.expected is not None:
            return sample.expected
        found = self._expected.get(sample.key)
        if found is None:
            raise NoReference("no expected answer for this prompt")
        return found

    async def grade(self, sample: Sample) -> Grade:
        answer = sample.answer.strip()
        if self.match == "regex" and self._pattern is not None:
            return _bool(self._pattern.search(answer) is not None)
        expected = self.reference(sample).strip()
        if self.match == "regex":
            try:
                return _bool(re.search(expected, answer, self._flags) is not None)
            except re.error as exc:
                raise GraderError(f"the expected answer is not a regex: {exc}") from None
        if self._ignore_case:
            answer, expected = answer.casefold(), expected.casefold()
        if self.match == "exact":
            return _bool(answer == expected)
        return _bool(expected in answer)


def _bool(ok: bool) -> Grade:
    return Grade(1.0 if ok else 0.0, "match" if ok else "no match")
