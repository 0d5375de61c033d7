"""Conversion between Bedrock's dataset formats and the OpenAI chat format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customize.cli import app
from customize.datasets.convert import convert_record
from customize.datasets.formats import CHECKS
from customize.errors import DatasetError

OPENAI = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
}


@pytest.mark.parametrize(
    "target", ["prompt-completion", "claude-messages", "bedrock-conversation-2024"]
)
def test_openai_converts_to_a_valid_bedrock_record(target: str) -> None:
    converted = convert_record(OPENAI, "openai", target)  # type: ignore[arg-type]
    assert CHECKS[target](converted) == []  # type: ignore[index]


def test_exact_shapes() -> None:
    assert convert_record(OPENAI, "openai", "prompt-completion") == {
        "prompt": "Be brief.\n\nCapital of France?",
        "completion": "Paris.",
    }
    assert convert_record(OPENAI, "openai", "claude-messages") == {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ],
    }
    assert convert_record(OPENAI, "openai", "bedrock-conversation-2024") == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Capital of France?"}]},
            {"role": "assistant", "content": [{"text": "Paris."}]},
        ],
    }


@pytest.mark.parametrize("middle", ["claude-messages", "bedrock-conversation-2024"])
def test_round_trip_through_a_chat_format_is_lossless(middle: str) -> None:
    there = convert_record(OPENAI, "openai", middle)  # type: ignore[arg-type]
    assert convert_record(there, middle, "openai") == OPENAI  # type: ignore[arg-type]


def test_lossy_conversions_are_refused() -> None:
    multi_turn = {
        "messages": OPENAI["messages"]
        + [{"role": "user", "content": "And Spain?"}, {"role": "assistant", "content": "Madrid."}]
    }
    with pytest.raises(DatasetError, match="one user/assistant exchange; this record has 4 turns"):
        convert_record(multi_turn, "openai", "prompt-completion")
    with_image = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/a.png"}}}}
                ],
            },
            {"role": "assistant", "content": [{"text": "A cat."}]},
        ],
    }
    with pytest.raises(DatasetError, match="only text content blocks can be converted"):
        convert_record(with_image, "bedrock-conversation-2024", "claude-messages")


def test_convert_command_writes_nothing_when_a_line_fails(
    tmp_path: Path, runner: CliRunner
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source = work / "chat.jsonl"
    source.write_text(
        json.dumps(OPENAI)
        + "\n"
        + json.dumps({"messages": [{"role": "tool", "content": "x"}]})
        + "\n"
    )
    target = work / "nova.jsonl"
    result = runner.invoke(
        app,
        [
            "convert",
            str(source),
            str(target),
            "--from",
            "openai",
            "--to-base",
            "amazon.nova-micro-v1:0",
        ],
    )
    assert result.exit_code == 1
    assert "line 2: messages[0] needs role" in result.stderr
    assert not target.exists() and list(work.iterdir()) == [source]


def test_convert_command_converts_every_line(tmp_path: Path, runner: CliRunner) -> None:
    source = tmp_path / "chat.jsonl"
    source.write_text((json.dumps(OPENAI) + "\n") * 3)
    target = tmp_path / "claude.jsonl"
    result = runner.invoke(
        app,
        [
            "convert",
            str(source),
            str(target),
            "--from",
            "openai",
            "--to",
            "claude-messages",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == 3
    validated = runner.invoke(app, ["validate", str(target), "--format", "claude-messages"])
    assert validated.exit_code == 0, validated.output
