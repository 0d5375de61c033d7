"""Read the JSONL formats Bedrock fine-tuning takes, so one dataset feeds both kinds of training.

Accepted per line:
- ``{"prompt": ..., "completion": ...}``
- ``{"system": ..., "messages": [{"role", "content": str}, ...]}`` (Claude 3 style; a system
  turn inside ``messages`` works too)
- ``{"schemaVersion": "bedrock-conversation-2024", "system": [{"text"}],
  "messages": [{"role", "content": [{"text"}]}]}`` (Nova)

The last assistant turn is the training target; the turns before it are the prompt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters_local.data.messages import ChatMessage, Role

_ROLES: tuple[Role, ...] = ("system", "user", "assistant")


class DataError(ValueError):
    """A malformed dataset line; the message names the file and line."""


@dataclass(frozen=True)
class Record:
    messages: tuple[ChatMessage, ...]  # the prompt turns
    answer: str


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        if all(isinstance(p, str) for p in parts) and parts:
            return "".join(str(p) for p in parts)
    raise ValueError("content must be a string or a list of {text} blocks")


def parse_record(data: Any) -> Record:
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    if "prompt" in data and "completion" in data:
        return Record((ChatMessage("user", _text(data["prompt"])),), _text(data["completion"]))
    if "messages" not in data:
        raise ValueError("expected prompt/completion or messages")
    turns: list[ChatMessage] = []
    if data.get("system"):
        turns.append(ChatMessage("system", _text(data["system"])))
    for message in data["messages"]:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _ROLES:
            raise ValueError(f"unknown role {role!r}")
        turns.append(ChatMessage(role, _text(message.get("content"))))
    if not turns or turns[-1].role != "assistant":
        raise ValueError("the last message must be the assistant's answer")
    return Record(tuple(turns[:-1]), turns[-1].content)


def read_jsonl(path: Path) -> list[Record]:
    records: list[Record] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(parse_record(json.loads(line)))
        except (ValueError, AttributeError, TypeError) as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
    if not records:
        raise DataError(f"{path} has no records")
    return records


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
