"""Evaluation rows from a JSONL file in Bedrock's customization formats (prompt/completion,
Claude messages, bedrock-conversation-2024 with a final assistant turn, or OpenAI chat), read
with the same record checks and conversion as ``strata customize validate`` / ``convert``.

Each row becomes (prompt chat, expected answer): the last assistant turn is the answer, every
turn before it the prompt. A bad line is an error naming the file, the line and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.experiments.graders.base import Chat, prompt_key


class DatasetProblem(ValueError):
    """A line that is not a usable evaluation row; the message names file and line."""


@dataclass(frozen=True)
class Row:
    line: int
    prompt: Chat
    expected: str

    @property
    def key(self) -> str:
        return prompt_key(self.prompt)


def detect_format(record: dict[str, Any]) -> str:
    if "prompt" in record and "completion" in record:
        return "prompt-completion"
    messages = record.get("messages")
    if record.get("schemaVersion") or (
        isinstance(messages, list)
        and messages
        and isinstance(messages[0], dict)
        and isinstance(messages[0].get("content"), list)
        and all(isinstance(b, dict) and "type" not in b for b in messages[0]["content"])
    ):
        return "bedrock-conversation-2024"
    if isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "system" for m in messages
    ):
        return "openai"
    return "claude-messages"


def to_row(record: object, line: int, where: str) -> Row:
    from customize.datasets.convert import convert_record
    from customize.errors import DatasetError

    if not isinstance(record, dict):
        raise DatasetProblem(f"{where}:{line}: a row must be a JSON object")
    fmt = detect_format(record)
    try:
        chat = convert_record(record, fmt, "openai")  # type: ignore[arg-type]
    except DatasetError as exc:
        raise DatasetProblem(f"{where}:{line}: {exc} (read as {fmt})") from None
    turns: Chat = [{"role": m["role"], "content": m["content"]} for m in chat["messages"]]
    if len(turns) < 2 or turns[-1]["role"] != "assistant":
        raise DatasetProblem(f"{where}:{line}: the last turn must be the assistant's answer")
    if not any(t["role"] == "user" for t in turns[:-1]):
        raise DatasetProblem(f"{where}:{line}: no user turn before the answer")
    return Row(line, turns[:-1], turns[-1]["content"])


def read_rows(path: Path) -> list[Row]:
    if not path.is_file():
        raise DatasetProblem(f"{path}: no such file")
    rows: list[Row] = []
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise DatasetProblem(f"{path}:{line}: not JSON ({exc})") from None
            rows.append(to_row(record, line, str(path)))
    if not rows:
        raise DatasetProblem(f"{path}: no rows")
    return rows


def expected_answers(path: Path) -> dict[str, str]:
    """Prompt (last user turn) → expected answer; a prompt given twice keeps its first answer."""
    out: dict[str, str] = {}
    for row in read_rows(path):
        out.setdefault(row.key, row.expected)
    return out
