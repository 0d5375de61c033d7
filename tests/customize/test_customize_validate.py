"""Dataset validation: each format's rules, line numbers, limits, and the validate command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customize.catalog import family_named
from customize.cli import app
from customize.datasets.formats import dataset_spec, spec_for_format
from customize.datasets.validate import DatasetScan

PC_GOOD = {"prompt": "What is 2+2?", "completion": "4"}
CLAUDE_GOOD = {
    "system": "Answer tersely.",
    "messages": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Italy?"},
        {"role": "assistant", "content": "Rome."},
    ],
}
NOVA_GOOD = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You are a friendly assistant."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"text": "What is in this picture?"},
                {
                    "image": {
                        "format": "png",
                        "source": {"s3Location": {"uri": "s3://bucket/cat.png"}},
                    }
                },
            ],
        },
        {"role": "assistant", "content": [{"text": "A cat."}]},
    ],
}


def _with(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**record, **changes}


def _messages(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": role, "content": content} for role, content in pairs]


def _nova(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return _with(NOVA_GOOD, messages=_messages(*pairs))


# (format, the broken record as a line of text or JSON value, expected reason fragments).
# Each case is written as line 2 of a three-line file between two good records, so the test
# also proves the reported line number is the physical line of the broken record.
BROKEN: list[tuple[str, Any, list[str]]] = [
    ("prompt-completion", {"prompt": "hi"}, ["missing key 'completion'"]),
    (
        "prompt-completion",
        {"prompt": 7, "completion": "x"},
        ["'prompt' must be a string, got number"],
    ),
    (
        "prompt-completion",
        {"prompt": "a", "completion": "b", "label": 1},
        ["unexpected key 'label'"],
    ),
    ("prompt-completion", {"prompt": "a", "completion": "  "}, ["'completion' is empty"]),
    ("prompt-completion", ["prompt", "completion"], ["record must be a JSON object, got array"]),
    ("prompt-completion", '{"prompt": "a", "completion": "b"', ["invalid JSON"]),
    ("prompt-completion", "", ["empty line"]),
    (
        "claude-messages",
        _with(CLAUDE_GOOD, messages=_messages(("user", "hi"))),
        ["'messages' needs at least 2, got 1"],
    ),
    (
        "claude-messages",
        _with(
            CLAUDE_GOOD,
            messages=_messages(("assistant", "hi"), ("user", "yo"), ("assistant", "ok")),
        ),
        ["messages[0] must be from 'user', got 'assistant'"],
    ),
    (
        "claude-messages",
        _with(CLAUDE_GOOD, messages=_messages(("user", "a"), ("assistant", "b"), ("user", "c"))),
        ["messages[2] (the last) must be from 'assistant', got 'user'"],
    ),
    (
        "claude-messages",
        _with(CLAUDE_GOOD, messages=_messages(("user", "a"), ("user", "b"), ("assistant", "c"))),
        ["messages[1] repeats role 'user' (roles must alternate)"],
    ),
    ("claude-messages", _with(CLAUDE_GOOD, metadata={"id": 1}), ["unexpected key 'metadata'"]),
    ("claude-messages", _with(CLAUDE_GOOD, system=["x"]), ["'system' must be a string, got array"]),
    (
        "claude-messages",
        _with(
            CLAUDE_GOOD,
            messages=[
                {"role": "user", "content": "a", "name": "bob"},
                {"role": "assistant", "content": "b"},
            ],
        ),
        ["messages[0]: unexpected key 'name'"],
    ),
    (
        "claude-messages",
        _with(
            CLAUDE_GOOD,
            messages=_messages(("system", "be nice"), ("user", "a"), ("assistant", "b")),
        ),
        ["messages[0].role 'system' is not allowed here"],
    ),
    (
        "claude-messages",
        _with(CLAUDE_GOOD, messages=_messages(("user", "a"), ("assistant", [{"type": "text"}]))),
        ["messages[1]: content must be a string, got array"],
    ),
    (
        "bedrock-conversation-2024",
        {k: v for k, v in NOVA_GOOD.items() if k != "schemaVersion"},
        ["missing key 'schemaVersion'"],
    ),
    (
        "bedrock-conversation-2024",
        _with(NOVA_GOOD, system="be nice"),
        ["'system' must be an array"],
    ),
    (
        "bedrock-conversation-2024",
        _nova(("user", "plain string"), ("assistant", [{"text": "ok"}])),
        ["messages[0]: content must be an array of blocks, got string"],
    ),
    (
        "bedrock-conversation-2024",
        _nova(("user", [{"text": "User: hello"}]), ("assistant", [{"text": "hi"}])),
        ["messages[0]: content[0].text contains reserved keyword 'User:'"],
    ),
    (
        "bedrock-conversation-2024",
        _nova(
            ("user", [{"text": "draw"}]), ("assistant", [NOVA_GOOD["messages"][0]["content"][1]])
        ),
        ["messages[1]: content[0]: image is allowed only in user messages"],
    ),
    (
        "bedrock-conversation-2024",
        _nova(
            (
                "user",
                [{"image": {"format": "bmp", "source": {"s3Location": {"uri": "s3://b/x.bmp"}}}}],
            ),
            ("assistant", [{"text": "hi"}]),
        ),
        ["messages[0]: content[0].image.format must be one of png, jpeg, gif, webp, got 'bmp'"],
    ),
    (
        "bedrock-conversation-2024",
        _nova(
            ("user", [{"text": "q"}]), ("assistant", [{"text": "a"}]), ("user", [{"text": "q2"}])
        ),
        ["messages[2] (the last) must be from 'assistant', got 'user'"],
    ),
    (
        "bedrock-conversation-2024",
        _nova(("user", [{"text": "q", "image": {}}]), ("assistant", [{"text": "a"}])),
        ["messages[0]: content[0] must have exactly one of 'text', 'image', 'video'"],
    ),
]
GOOD = {
    "prompt-completion": PC_GOOD,
    "claude-messages": CLAUDE_GOOD,
    "bedrock-conversation-2024": NOVA_GOOD,
}


def _line(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(_line(value) + "\n" for value in lines), encoding="utf-8")
    return path


def _scan(path: Path, data_format: str) -> list[tuple[int | None, str]]:
    return [(p.line, p.reason) for p in DatasetScan(path, spec_for_format(data_format))]  # type: ignore[arg-type]


@pytest.mark.parametrize("data_format", sorted(GOOD))
def test_good_file_has_no_problems(tmp_path: Path, data_format: str) -> None:
    path = _write(tmp_path / "good.jsonl", [GOOD[data_format]] * 5)
    scan = DatasetScan(path, spec_for_format(data_format))  # type: ignore[arg-type]
    assert list(scan) == []
    assert scan.stats.records == scan.stats.valid_records == 5
    assert scan.stats.estimated_tokens > 0


@pytest.mark.parametrize(
    ("data_format", "broken", "expected"), BROKEN, ids=[f"{c[0]}-{i}" for i, c in enumerate(BROKEN)]
)
def test_broken_record_is_reported_on_its_line(
    tmp_path: Path, data_format: str, broken: Any, expected: list[str]
) -> None:
    good = GOOD[data_format]
    path = _write(tmp_path / "data.jsonl", [good, broken, good])
    problems = _scan(path, data_format)
    assert problems, "a broken record must produce at least one problem"
    assert {line for line, _ in problems} == {2}
    for fragment in expected:
        assert any(fragment in reason for _, reason in problems), (fragment, problems)


def test_every_broken_line_is_reported_with_its_own_number(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.jsonl",
        [PC_GOOD, {"prompt": "x"}, PC_GOOD, PC_GOOD, "not json", PC_GOOD, {"completion": "y"}],
    )
    problems = _scan(path, "prompt-completion")
    assert [line for line, _ in problems] == [2, 5, 7]
    assert "missing key 'completion'" in problems[0][1]
    assert problems[1][1].startswith("invalid JSON")
    assert "missing key 'prompt'" in problems[2][1]


def test_distillation_accepts_prompts_without_answers(tmp_path: Path) -> None:
    prompt_only = _nova(("user", [{"text": "Summarize the report."}]))
    path = _write(tmp_path / "prompts.jsonl", [prompt_only] * 100)  # distillation needs 100+
    nova = family_named("nova")
    assert list(DatasetScan(path, dataset_spec(nova, "DISTILLATION"))) == []
    fine_tuning = [(p.line, p.reason) for p in DatasetScan(path, dataset_spec(nova, "FINE_TUNING"))]
    assert any("(the last) must be from 'assistant'" in reason for _, reason in fine_tuning)


def test_family_limits_apply_to_counts_and_tokens(tmp_path: Path) -> None:
    titan = family_named("titan-text")
    assert titan.limits.max_tokens_per_record is not None and titan.limits.min_records is not None
    too_long = {"prompt": "word " * titan.limits.max_tokens_per_record, "completion": "ok"}
    path = _write(tmp_path / "small.jsonl", [PC_GOOD, too_long, PC_GOOD])
    scan = DatasetScan(path, dataset_spec(titan))
    problems = [(p.line, p.reason) for p in scan]
    assert any(
        line == 2 and f"over the {titan.limits.max_tokens_per_record}-token limit" in r
        for line, r in problems
    )
    assert any(
        line is None and r.startswith("3 records, fewer than the minimum of 32")
        for line, r in problems
    )
    assert scan.stats.max_record_line == 2 and scan.stats.over_token_limit == 1


def test_continued_pretraining_uses_input_records(tmp_path: Path) -> None:
    titan = family_named("titan-text")
    path = _write(tmp_path / "cpt.jsonl", [{"input": "raw domain text"}, PC_GOOD])
    problems = [
        (p.line, p.reason) for p in DatasetScan(path, dataset_spec(titan, "CONTINUED_PRE_TRAINING"))
    ]
    assert (2, "missing key 'input'") in problems and (1, "missing key 'input'") not in problems


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert _scan(path, "prompt-completion") == [(None, "the file has no records")]


def test_validate_command_lists_problems_and_fails(tmp_path: Path, runner: CliRunner) -> None:
    path = _write(tmp_path / "train.jsonl", [CLAUDE_GOOD, _with(CLAUDE_GOOD, extra=1), CLAUDE_GOOD])
    result = runner.invoke(
        app, ["validate", str(path), "--base", "anthropic.claude-3-haiku-20240307-v1:0:200k"]
    )
    assert result.exit_code == 1
    assert "train.jsonl: line 2: unexpected key 'extra'" in result.stdout
    assert "3 records, fewer than the minimum of 32" in result.stdout
    assert "Anthropic Claude 3 Haiku" in result.stdout


def test_validate_command_json(tmp_path: Path, runner: CliRunner) -> None:
    path = _write(tmp_path / "train.jsonl", [NOVA_GOOD] * 10)
    result = runner.invoke(
        app, ["validate", str(path), "--base", "amazon.nova-lite-v1:0:300k", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["family"] == "nova"
    assert payload["format"] == "bedrock-conversation-2024"
    assert payload["stats"]["records"] == 10 and payload["problems"] == []
    assert payload["limits"]["source"].startswith("https://docs.aws.amazon.com/")


def test_validate_command_caps_listed_problems_but_counts_all(
    tmp_path: Path, runner: CliRunner
) -> None:
    path = _write(tmp_path / "bad.jsonl", [{"prompt": "x"}] * 40)
    result = runner.invoke(
        app,
        ["validate", str(path), "--format", "prompt-completion", "--json", "--max-problems", "5"],
    )
    payload = json.loads(result.stdout)
    assert result.exit_code == 1
    assert [p["line"] for p in payload["problems"]] == [1, 2, 3, 4, 5]
    assert payload["problems_not_shown"] == 35 and payload["stats"]["problems"] == 40


def test_validate_refuses_unknown_base_model(tmp_path: Path, runner: CliRunner) -> None:
    path = _write(tmp_path / "d.jsonl", [PC_GOOD])
    result = runner.invoke(app, ["validate", str(path), "--base", "cohere.command-r-v1:0"])
    assert result.exit_code == 1
    assert "is not one Strata knows how to customize" in result.stderr
    assert "Traceback" not in result.output
