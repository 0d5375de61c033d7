"""Conversion between Bedrock's JSONL formats and the OpenAI chat format, by way of OpenAI chat.

Each Bedrock format maps to and from ``{"messages": [{"role", "content": str}…]}``; converting A→B
is ``from_openai(to_openai(record, A), B)``. Conversions that would lose information (media blocks,
multi-turn chats into a single prompt/completion pair) raise ``DatasetError`` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from customize.datasets.formats import CHECKS
from customize.datasets.records import NOVA_SCHEMA
from customize.errors import DatasetError

ConvertFormat = Literal[
    "openai", "prompt-completion", "claude-messages", "bedrock-conversation-2024"
]
CONVERT_FORMATS: tuple[str, ...] = get_args(ConvertFormat)

Chat = dict[str, Any]


def _openai_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" for p in content
    ):
        return "".join(str(part.get("text", "")) for part in content)
    raise DatasetError("only text content can be converted (found a non-text content part)")


def _nova_text(blocks: object) -> str:
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and set(b) == {"text"} for b in blocks
    ):
        raise DatasetError("only text content blocks can be converted (found image or video)")
    return "\n".join(str(block["text"]) for block in blocks)


def check_openai(record: object) -> list[str]:
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return ["record must be an object with a 'messages' array"]
    problems = []
    for index, message in enumerate(record["messages"]):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
        ):
            problems.append(f"messages[{index}] needs role 'system', 'user' or 'assistant'")
    return problems


def to_openai(record: dict[str, Any], source: ConvertFormat) -> Chat:
    if source == "openai":
        messages = [
            {"role": m["role"], "content": _openai_text(m.get("content"))}
            for m in record["messages"]
        ]
        return {"messages": messages}
    if source == "prompt-completion":
        return {
            "messages": [
                {"role": "user", "content": record["prompt"]},
                {"role": "assistant", "content": record["completion"]},
            ]
        }
    if source == "claude-messages":
        system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        turns = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        return {"messages": system + turns}
    system_text = _nova_text(record.get("system", []))
    system = [{"role": "system", "content": system_text}] if system_text else []
    turns = [{"role": m["role"], "content": _nova_text(m["content"])} for m in record["messages"]]
    return {"messages": system + turns}


def _split_system(chat: Chat) -> tuple[str, list[dict[str, str]]]:
    system = "\n".join(m["content"] for m in chat["messages"] if m["role"] == "system")
    return system, [m for m in chat["messages"] if m["role"] != "system"]


def from_openai(chat: Chat, target: ConvertFormat) -> dict[str, Any]:
    system, turns = _split_system(chat)
    if target == "openai":
        return chat
    if target == "prompt-completion":
        if [m["role"] for m in turns] != ["user", "assistant"]:
            raise DatasetError(
                "prompt-completion holds one user/assistant exchange; "
                f"this record has {len(turns)} turns"
            )
        # The format has no system field; the system text leads the prompt so it is not lost.
        prompt = f"{system}\n\n{turns[0]['content']}" if system else turns[0]["content"]
        return {"prompt": prompt, "completion": turns[1]["content"]}
    if target == "claude-messages":
        claude: dict[str, Any] = {"system": system} if system else {}
        claude["messages"] = turns
        return claude
    nova: dict[str, Any] = {"schemaVersion": NOVA_SCHEMA}
    if system:
        nova["system"] = [{"text": system}]
    nova["messages"] = [{"role": m["role"], "content": [{"text": m["content"]}]} for m in turns]
    return nova


def convert_record(record: object, source: ConvertFormat, target: ConvertFormat) -> dict[str, Any]:
    check = check_openai if source == "openai" else CHECKS[source]
    problems = check(record)
    if problems:
        raise DatasetError(problems[0])
    assert isinstance(record, dict)  # the checks above refuse anything else
    return from_openai(to_openai(record, source), target)


@dataclass(frozen=True)
class ConversionResult:
    records: int
    output: Path
    blank_lines: tuple[int, ...] = ()  # skipped, and reported as warnings (as validate does)


def convert_file(
    source_path: Path, target_path: Path, source: ConvertFormat, target: ConvertFormat
) -> ConversionResult:
    """Convert line by line; the output appears only when every line converted."""
    partial = target_path.with_name(f".{target_path.name}.partial")
    count = 0
    blank: list[int] = []
    try:
        with source_path.open("rb") as reader, partial.open("wb") as writer:
            for lineno, raw in enumerate(reader, start=1):
                if not raw.strip():
                    blank.append(lineno)
                    continue
                try:
                    converted = convert_record(orjson.loads(raw), source, target)
                except (DatasetError, orjson.JSONDecodeError) as error:
                    raise DatasetError(f"line {lineno}: {error}") from None
                writer.write(orjson.dumps(converted) + b"\n")
                count += 1
        os.replace(partial, target_path)
    finally:
        partial.unlink(missing_ok=True)
    return ConversionResult(count, target_path, tuple(blank))
