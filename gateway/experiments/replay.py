"""``strata ab replay NAME``: a dataset through every arm of an experiment, over the gateway's HTTP
API, graded, with the grades stored as outcomes so that ``strata ab status`` reads a verdict.

Each row is sent once per arm with ``x-strata-arm`` (admin keys), so both arms answer every
row; the gateway records those calls as forced, which keeps them out of the sample-ratio check.
The answers are graded here, where each row's expected answer is at hand (``exact``, say,
compares with the row's completion); a judge is called through the gateway like any client,
so its cost is in the ledger. Progress goes to stderr while it runs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import aiohttp

from gateway.experiments.dataset import Row, read_rows
from gateway.experiments.graders.base import Chat, Grade, Grader, Sample
from gateway.experiments.graders.config import GraderSection, build_grader

OUTCOME_BATCH = 500


class ReplayError(Exception):
    """The replay cannot go on (the gateway refused, the grader cannot be built)."""


@dataclass
class Answer:
    row: Row
    arm: str
    request_id: str | None = None
    text: str | None = None
    error: str | None = None
    grade: Grade | None = None


@dataclass
class ReplayResult:
    grader: str
    answers: list[Answer] = field(default_factory=list)
    grade_errors: int = 0

    def per_arm(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for a in self.answers:
            arm = out.setdefault(a.arm, {"calls": 0, "errors": 0, "graded": 0, "score_sum": 0.0})
            arm["calls"] += 1
            arm["errors"] += a.error is not None
            if a.grade is not None:
                arm["graded"] += 1
                arm["score_sum"] += a.grade.score
        for arm in out.values():
            arm["mean"] = arm["score_sum"] / arm["graded"] if arm["graded"] else float("nan")
            del arm["score_sum"]
        return out


def grader_section(spec: str, rubric: str | None = None) -> tuple[str, GraderSection]:
    """``exact`` | ``contains`` | ``regex[:PATTERN]`` | ``json_schema:FILE`` |
    ``python:module:function`` | ``judge:ALIAS[:pairwise]`` → (name, section)."""
    kind, _, rest = spec.partition(":")
    if kind in ("exact", "contains"):
        return kind, GraderSection.model_validate({"kind": kind})
    if kind == "regex":
        return kind, GraderSection(kind="regex", pattern=rest or None)
    if kind == "json_schema" and rest:
        return kind, GraderSection(kind="json_schema", schema_file=Path(rest))
    if kind == "python" and rest:
        return kind, GraderSection(kind="python", function=rest)
    if kind == "judge" and rest:
        alias, _, mode = rest.partition(":")
        if mode not in ("", "single", "pairwise"):
            raise ReplayError(f"--grader: judge mode {mode!r} is not single or pairwise")
        section = GraderSection.model_validate(
            {"kind": "judge", "alias": alias, "mode": mode or "single"}
            | ({"rubric": rubric} if rubric else {})
        )
        return kind, section
    raise ReplayError(
        f"--grader: {spec!r}; use exact, contains, regex[:PATTERN], json_schema:FILE, "
        "python:module:function or judge:ALIAS[:pairwise]"
    )


def grader_for(spec: str | None, metric: str, rubric: str | None) -> tuple[str, GraderSection]:
    """The grader to use and the name its outcomes are stored under: the experiment's metric
    ``grader:NAME`` names both (NAME is the spec too when it is one, ``exact`` say), ``--grader``
    chooses another spec; outside a grader metric the name is the spec's kind."""
    named = metric.removeprefix("grader:") if metric.startswith("grader:") else None
    if spec is None:
        try:
            kind, section = grader_section(named or "exact", rubric)
        except ReplayError:
            raise ReplayError(
                f"the experiment's metric is {metric!r}; pass --grader SPEC to say how to grade"
            ) from None
    else:
        kind, section = grader_section(spec, rubric)
    return named or kind, section


class Client:
    """The gateway's HTTP API, as the replay uses it."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self._session = session
        self._base = base
        self._headers = {"Authorization": f"Bearer {key}"}

    async def _json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        async with self._session.request(
            method,
            self._base + path,
            headers={**self._headers, **kwargs.pop("headers", {})},
            **kwargs,
        ) as reply:
            try:
                body = await reply.json(content_type=None)
            except ValueError:
                body = None
            return reply.status, body, dict(reply.headers)

    async def get(self, path: str) -> Any:
        status, body, _ = await self._json("GET", path)
        if status != 200:
            raise ReplayError(f"GET {path}: {status}: {_message(body)}")
        return body

    async def chat(
        self, model: str, chat: Chat, *, arm: str | None = None, max_tokens: int | None = None
    ) -> tuple[str | None, str | None, str | None]:
        """(request id, answer text, error)."""
        body: dict[str, Any] = {"model": model, "messages": chat, "temperature": 0}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        headers = {"x-strata-arm": arm} if arm is not None else {}
        status, doc, reply_headers = await self._json(
            "POST", "/v1/chat/completions", json=body, headers=headers
        )
        rid = reply_headers.get("x-strata-request-id") or reply_headers.get("X-Strata-Request-Id")
        if status != 200:
            if status in (401, 403) or (status == 400 and _param(doc) == "x-strata-arm"):
                raise ReplayError(f"the gateway refused the replay: {status}: {_message(doc)}")
            return rid, None, f"{status}: {_message(doc)}"
        return rid, str(doc["choices"][0]["message"]["content"] or ""), None

    async def outcomes(self, experiment: str, grader: str, items: list[dict[str, Any]]) -> None:
        path = f"/admin/experiments/{quote(experiment, safe='')}/outcomes"
        status, doc, _ = await self._json("POST", path, json={"grader": grader, "outcomes": items})
        if status != 200:
            raise ReplayError(f"POST {path}: {status}: {_message(doc)}")


def _message(doc: Any) -> str:
    try:
        return str(doc["error"]["message"])
    except (KeyError, TypeError):
        return str(doc)[:200]


def _param(doc: Any) -> str | None:
    try:
        return str(doc["error"]["param"])
    except (KeyError, TypeError):
        return None


class HttpComplete:
    """The judge's ``Complete`` from outside the gateway: a chat completion of an alias."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def __call__(self, alias: str, chat: Chat, *, sample: Sample) -> str:
        _, text, error = await self._client.chat(alias, chat, max_tokens=16)
        if text is None:
            raise RuntimeError(f"the judge alias {alias!r} failed: {error}")
        return text


class Progress:
    """One status line on stderr, rewritten in place on a terminal, else every 10%."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.done, self.errors = total, 0, 0
        self._out = out
        self._tty = out.isatty()
        self._started = time.monotonic()
        self._last_decile = -1

    def step(self, error: bool, what: str = "answered") -> None:
        self.done += 1
        self.errors += error
        decile = self.done * 10 // max(1, self.total)
        if self._tty or decile != self._last_decile or self.done == self.total:
            self._last_decile = decile
            elapsed = time.monotonic() - self._started
            line = f"replay: {what} {self.done}/{self.total} ({self.errors} errors, {elapsed:.0f}s)"
            self._out.write(("\r" + line) if self._tty else line + "\n")
            if self._tty and self.done == self.total:
                self._out.write("\n")
            self._out.flush()

    def restart(self, total: int) -> None:
        self.total, self.done, self.errors, self._last_decile = total, 0, 0, -1


async def replay(
    base: str,
    key: str,
    experiment: str,
    dataset: Path,
    *,
    grader_spec: str | None = None,
    rubric: str | None = None,
    concurrency: int = 8,
    max_tokens: int | None = None,
    out: TextIO = sys.stderr,
) -> ReplayResult:
    rows = read_rows(dataset)
    # A local model answers one batch at a time: a generous per-call limit.
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Client(session, base, key)
        shown = await client.get(f"/admin/experiments/{quote(experiment, safe='')}")
        arms, alias = list(shown["arms"]), str(shown["alias"])
        experiment = str(shown["name"])
        name, section = grader_for(grader_spec, str(shown.get("metric", "feedback")), rubric)
        try:
            grader: Grader = build_grader(name, section, HttpComplete(client))
        except ValueError as exc:
            raise ReplayError(f"--grader: {exc}") from None
        result = ReplayResult(name, [Answer(row, arm) for row in rows for arm in arms])
        progress = Progress(len(result.answers), out)
        gate = asyncio.Semaphore(concurrency)

        async def answer(a: Answer) -> None:
            async with gate:
                a.request_id, a.text, a.error = await client.chat(
                    alias, a.row.prompt, arm=a.arm, max_tokens=max_tokens
                )
            progress.step(a.error is not None)

        out.write(
            f"replay: {len(rows)} rows x {len(arms)} arms ({', '.join(arms)}) of {alias!r}, "
            f"{concurrency} at a time; grader {name}\n"
        )
        await asyncio.gather(*(answer(a) for a in result.answers))
        graded = [a for a in result.answers if a.text is not None and a.request_id]
        progress.restart(len(graded))

        async def grade(a: Answer) -> None:
            assert a.text is not None and a.request_id is not None
            sample = Sample(a.request_id, a.row.prompt, a.text, a.row.expected, alias, a.arm)
            async with gate:
                try:
                    a.grade = await grader.grade(sample)
                except Exception as exc:  # counted and shown, the replay goes on
                    result.grade_errors += 1
                    a.error = f"grader: {type(exc).__name__}: {exc}"
            progress.step(a.grade is None, "graded")

        await asyncio.gather(*(grade(a) for a in graded))
        items = [
            {"request_id": a.request_id, "score": a.grade.score, "detail": a.grade.detail[:200]}
            for a in graded
            if a.grade is not None
        ]
        for i in range(0, len(items), OUTCOME_BATCH):
            await client.outcomes(experiment, name, items[i : i + OUTCOME_BATCH])
    return result
