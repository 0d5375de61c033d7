"""Dataset parsing (Bedrock's JSONL formats), packing, and adapter composition strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters_local.compose.spec import CompositionError, Stack, WeightedLora, parse_composition
from adapters_local.data.packing import IGNORE, Example, pack, padding_fraction
from adapters_local.data.records import DataError, read_jsonl
from adapters_local.serving.generation import ChatMessage


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_reads_prompt_completion_claude_and_nova_formats(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "d.jsonl",
        [
            {"prompt": "Encode: abc", "completion": "nop"},
            {
                "system": "be brief",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": "again"},
                    {"role": "assistant", "content": "ok"},
                ],
            },
            {
                "schemaVersion": "bedrock-conversation-2024",
                "system": [{"text": "sys"}],
                "messages": [
                    {"role": "user", "content": [{"text": "q"}]},
                    {"role": "assistant", "content": [{"text": "a"}, {"text": "b"}]},
                ],
            },
        ],
    )
    records = read_jsonl(path)
    assert (
        records[0].messages == (ChatMessage("user", "Encode: abc"),) and records[0].answer == "nop"
    )
    assert [m.role for m in records[1].messages] == ["system", "user", "assistant", "user"]
    assert records[1].answer == "ok"
    assert records[2].messages[0] == ChatMessage("system", "sys") and records[2].answer == "ab"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ({"prompt": "x"}, "expected prompt/completion or messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "last message"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "unknown role"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: object, fragment: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [{"prompt": "a", "completion": "b"}, line])
    with pytest.raises(DataError, match=rf"bad.jsonl:2: .*{fragment}"):
        read_jsonl(path)


def test_packing_fills_rows_and_restarts_positions() -> None:
    examples = [
        Example(tuple(range(1, n + 1)), tuple([IGNORE] * (n // 2) + list(range(n // 2 + 1, n + 1))))
        for n in (6, 5, 4, 3, 2)
    ]
    rows = pack(examples, row_len=10, pad_id=0)
    assert len(rows) == 2  # 20 tokens into two rows of 10: first-fit-decreasing finds a fit
    for row in rows:
        assert len(row.input_ids) == len(row.labels) == len(row.position_ids) == 10
    # Every example starts at position 0, and its first token is never a target.
    starts = [i for row in rows for i, p in enumerate(row.position_ids) if p == 0]
    assert len(starts) >= len(examples)
    for row in rows:
        for index, position in enumerate(row.position_ids):
            if position == 0:
                assert row.labels[index] == IGNORE
    assert padding_fraction(rows, examples) == 0.0
    targets = sum(1 for row in rows for t in row.labels if t != IGNORE)
    assert targets == sum(e.answer_tokens for e in examples) - sum(
        1 for e in examples if e.labels[0] != IGNORE
    )


def test_compositions_parse_and_reject_garbage() -> None:
    assert parse_composition("/some/folder") is None
    assert parse_composition("weighted:a=0.7, b=0.3") == WeightedLora((("a", 0.7), ("b", 0.3)))
    assert parse_composition("stack:lo+bn") == Stack("lo", "bn")
    for bad in ("weighted:a", "weighted:=1", "stack:a", "stack:+b", "weighted:a=x"):
        with pytest.raises(CompositionError):
            parse_composition(bad)


def test_engine_and_cli_modules_import_without_torch() -> None:
    """The gateway imports these eagerly; torch and transformers load only when used."""
    import subprocess
    import sys

    code = (
        "import sys, adapters_local.serving.engine, adapters_local.cli; "
        "import adapters_local.serving.generation; "
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
