"""The graders on their own: text matches, JSON schema, Python functions, the judge's prompts,
parsing and position swap, and the sampling fraction of the live grading service."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from gateway.auth import Principal
from gateway.canonical import ContentBlock, ConverseRequest, Message
from gateway.experiments.dataset import DatasetProblem, read_rows
from gateway.experiments.graders.base import Chat, Grade, GraderError, Sample
from gateway.experiments.graders.config import GraderSection, build_grader
from gateway.experiments.graders.judge import (
    JudgeGrader,
    parse_score,
    parse_verdict,
    swapped_score,
)
from gateway.experiments.graders.service import Configured, GraderService
from gateway.experiments.graders.text import NoReference, TextGrader
from gateway.pipeline.call import Call, Outcome, Plan
from gateway.pipeline.policy import RoutePolicy
from gateway.targets import parse_target


def sample(answer: str, prompt: str = "Encode: abc", expected: str | None = None) -> Sample:
    return Sample("req-1", [{"role": "user", "content": prompt}], answer, expected)


def grade(grader: object, s: Sample) -> Grade:
    return asyncio.run(grader.grade(s))  # type: ignore[attr-defined]


def test_text_graders_against_expected_answers_by_prompt(tmp_path: Path) -> None:
    data = tmp_path / "eval.jsonl"
    data.write_text(
        json.dumps({"prompt": "Encode: abc", "completion": "nop"})
        + "\n\n"
        + json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "Say hi"},
                    {"role": "assistant", "content": "Hello there"},
                ]
            }
        )
        + "\n"
    )
    exact = build_grader("e", GraderSection(kind="exact", expected=data), None)
    assert grade(exact, sample(" nop\n")).score == 1.0
    assert grade(exact, sample("nopq")).score == 0.0
    contains = build_grader("c", GraderSection(kind="contains", expected=data), None)
    assert grade(contains, sample("Well: Hello there!", prompt="Say hi")).score == 1.0
    assert grade(contains, sample("hello there", prompt="Say hi")).score == 0.0
    folded = build_grader(
        "c", GraderSection(kind="contains", expected=data, ignore_case=True), None
    )
    assert grade(folded, sample("hello THERE", prompt="Say hi")).score == 1.0
    # A sample's own expected answer (a replayed row) wins over the dataset.
    assert grade(exact, sample("xyz", expected="xyz")).score == 1.0
    with pytest.raises(NoReference):
        grade(exact, sample("nop", prompt="Encode: zzz"))
    regex = TextGrader("r", "regex", pattern=r"^\d{3}-\d{4}$")
    assert grade(regex, sample("555-1234")).score == 1.0
    assert grade(regex, sample("call 555-1234")).score == 0.0
    by_expected = TextGrader("r", "regex")
    assert grade(by_expected, sample("order #12", expected=r"#\d+")).score == 1.0
    with pytest.raises(ValueError, match="pattern"):
        TextGrader("r", "regex", pattern="(")


def test_dataset_reader_takes_the_bedrock_formats_and_names_bad_lines(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p1", "completion": "c1"},
        {
            "system": "be brief",
            "messages": [
                {"role": "user", "content": "p2"},
                {"role": "assistant", "content": "c2"},
            ],
        },
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [
                {"role": "user", "content": [{"text": "p3"}]},
                {"role": "assistant", "content": [{"text": "c3"}]},
            ],
        },
    ]
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = read_rows(good)
    assert [(r.key, r.expected) for r in read] == [("p1", "c1"), ("p2", "c2"), ("p3", "c3")]
    assert read[1].prompt[0] == {"role": "system", "content": "be brief"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"prompt": "only"}) + "\n")
    with pytest.raises(DatasetProblem, match=r"bad\.jsonl:2"):
        read_rows(bad)
    no_answer = tmp_path / "q.jsonl"
    no_answer.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    with pytest.raises(DatasetProblem, match=r"q\.jsonl:1"):
        read_rows(no_answer)


def test_json_schema_grader() -> None:
    section = GraderSection.model_validate(
        {
            "kind": "json_schema",
            "schema": {
                "type": "object",
                "required": ["name"],
                "properties": {"age": {"type": "integer"}},
            },
        }
    )
    grader = build_grader("s", section, None)
    assert grade(grader, sample('{"name": "x", "age": 3}')).score == 1.0
    assert grade(grader, sample('```json\n{"name": "x"}\n```')).score == 1.0
    missing = grade(grader, sample('{"age": 3}'))
    assert missing.score == 0.0 and "required" in missing.detail
    assert grade(grader, sample('{"name": "x", "age": "3"}')).detail == "type failed at age"
    assert grade(grader, sample("not json")).detail == "not JSON"
    with pytest.raises(ValueError, match="schema"):
        bad = GraderSection.model_validate({"kind": "json_schema", "schema": {"type": 5}})
        build_grader("s", bad, None)


def length_score(prompt: Chat, answer: str, expected: str | None) -> float:
    return min(1.0, len(answer) / 10)


async def async_is_upper(prompt: Chat, answer: str, expected: str | None) -> bool:
    return answer.isupper()


def returns_text(prompt: Chat, answer: str, expected: str | None) -> str:
    return "good"


def test_python_graders() -> None:
    here = __name__
    shorthand = GraderSection.model_validate({"kind": f"python:{here}:length_score"})
    five = build_grader("p", shorthand, None)
    assert grade(five, sample("abcde")).score == 0.5
    upper = build_grader("p", GraderSection(kind="python", function=f"{here}:async_is_upper"), None)
    assert grade(upper, sample("ABC")).score == 1.0 and grade(upper, sample("aBC")).score == 0.0
    wrong = build_grader("p", GraderSection(kind="python", function=f"{here}:returns_text"), None)
    with pytest.raises(GraderError, match="str"):
        grade(wrong, sample("x"))
    with pytest.raises(ValueError, match="cannot import"):
        build_grader("p", GraderSection(kind="python", function="no_such_module_x:f"), None)
    with pytest.raises(ValueError, match="no function"):
        build_grader("p", GraderSection(kind="python", function=f"{here}:nope"), None)
    with pytest.raises(ValueError, match="module:function"):
        GraderSection(kind="python")


def test_judge_reply_parsing() -> None:
    assert parse_score("7") == 0.7 and parse_score("Score: 10/10") == 1.0 and parse_score("0") == 0
    for bad in ("11", "seven", "7 because it is good", ""):
        with pytest.raises(GraderError):
            parse_score(bad)
    assert parse_verdict("A") == "A" and parse_verdict(" tie.") == "TIE"
    assert parse_verdict("[B]") == "B"
    with pytest.raises(GraderError):
        parse_verdict("A is better")
    # Win, tie, loss in each order; a judge that always says "A" gives exactly one half.
    assert swapped_score("A", "B") == 1.0 and swapped_score("B", "A") == 0.0
    assert swapped_score("A", "A") == 0.5 and swapped_score("TIE", "TIE") == 0.5


class BiasedJudge:
    """A judge that picks the right answer ("nop") when exactly one answer is right, and
    otherwise always the answer shown first: position bias in its plainest form."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def __call__(self, alias: str, chat: Chat, *, sample: Sample) -> str:
        text = chat[-1]["content"]
        self.prompts.append(text)
        first = text.split("<<<A\n", 1)[1].split("\nA>>>", 1)[0]
        second = text.split("<<<B\n", 1)[1].split("\nB>>>", 1)[0]
        if (first == "nop") != (second == "nop"):
            return "A" if first == "nop" else "B"
        return "A"


def test_pairwise_judge_swaps_positions_so_order_bias_cancels() -> None:
    judge = BiasedJudge()
    grader = JudgeGrader("j", judge, alias="judge", mode="pairwise")
    right = grade(grader, sample("nop", expected="nop-ish"))  # the reference is wrong here
    assert right.score == 1.0
    wrong = grade(grader, sample("xyz", expected="nop"))
    assert wrong.score == 0.0
    # Neither right: the biased judge says "A" both times; swapped, that is a tie, not a win.
    tie = grade(grader, sample("xyz", expected="qqq"))
    assert tie.score == 0.5 and tie.detail == "answer as A: A; as B: A"
    assert len(judge.prompts) == 6
    # Both orders were asked: the answer was shown first once and second once.
    assert "<<<A\nxyz\nA>>>" in judge.prompts[4] and "<<<B\nxyz\nB>>>" in judge.prompts[5]


def test_single_judge_scores_with_the_rubric_and_reference() -> None:
    seen: list[Chat] = []

    async def judge(alias: str, chat: Chat, *, sample: Sample) -> str:
        seen.append(chat)
        return "8"

    grader = JudgeGrader("j", judge, alias="judge", rubric="Be exact.")
    assert grade(grader, sample("nop", expected="nop")).score == 0.8
    text = seen[0][-1]["content"]
    assert "Rubric: Be exact." in text and "<<<REFERENCE\nnop\nREFERENCE>>>" in text


def _call(alias: str, n: int) -> Call:
    call = Call(
        request_id=f"r{n}",
        principal=Principal("t", "k"),
        surface="openai",
        model=alias,
        request=ConverseRequest(messages=[Message(role="user", content=[ContentBlock(text="hi")])]),
    )
    call.plan = Plan(alias, (parse_target("bedrock:m"),), RoutePolicy(), lambda t: t)
    return call


class Always:
    name = "always"

    async def grade(self, sample: Sample) -> Grade:
        return Grade(1.0)


def test_sampling_fraction_is_respected_with_a_fixed_seed() -> None:
    service = GraderService(
        {
            "tenth": Configured(Always(), {"support": 0.1}),
            "half": Configured(Always(), {"support": 0.5, "other": 0.02}),
        },
        None,
        rng=random.Random(1234),
        queue_size=100_000,
    )
    n = 4000

    async def run() -> dict[str, int]:
        counts = {"tenth": 0, "half": 0, "other": 0}
        for i in range(n):
            for alias in ("support", "other", "ungraded"):
                call = _call(alias, i)
                await service.admit(call)
                drawn = call.context.get("graders.sampled", [])
                if alias == "other":
                    counts["other"] += len(drawn)
                else:
                    for name in drawn:
                        counts[name] += 1
                assert (call.outcome.answer is None) == (not drawn)
                if alias == "ungraded":
                    assert not drawn
        return counts

    counts = asyncio.run(run())
    for name, p in (("tenth", 0.1), ("half", 0.5), ("other", 0.02)):
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(counts[name] - n * p) < 4 * sd, (name, counts[name])


def test_a_full_queue_drops_and_counts() -> None:
    service = GraderService({"g": Configured(Always(), {"a": 1.0})}, None, queue_size=2)

    async def run() -> None:
        for i in range(5):
            call = _call("a", i)
            await service.admit(call)
            assert call.outcome.answer is not None
            call.outcome.answer.append("text")
            await service(call, call.outcome)

    asyncio.run(run())
    assert service.counts["g", "dropped"] == 3
    assert service.stats()["queued"] == 2


def test_errors_are_not_graded() -> None:
    service = GraderService({"g": Configured(Always(), {"a": 1.0})}, None)

    async def run() -> None:
        call = _call("a", 0)
        await service.admit(call)
        outcome: Outcome = call.outcome
        outcome.error_class = "client_disconnected"
        await service(call, outcome)

    asyncio.run(run())
    assert service.stats()["queued"] == 0


def test_outcome_chart_is_one_block_per_slice() -> None:
    from gateway.experiments.cli import chart, sparkline
    from gateway.experiments.report import timeline

    assert sparkline([0.0, 1.0, None, 0.5, 0.14]) == "▁█·▅▂"
    line = timeline([("a", 0.0, 10.0), ("a", 1.0, 20.0), ("b", 1.0, 15.0)], ["a", "b"], 2)
    assert line["means"] == {"a": [0.0, 1.0], "b": [None, 1.0]}
    drawn = chart({"metric": "grader:exact", "timeline": line})
    assert drawn[1:] == ["  a           ▁█", "  b           ·█"]
    assert chart({"metric": "feedback", "timeline": timeline([], ["a"])}) == []
