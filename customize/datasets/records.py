"""Per-record rules for each JSONL format Bedrock accepts; pure functions over parsed JSON.

Each ``check_*`` returns the list of reasons a record breaks its format (empty when it is fine).
Reasons name the field at fault (``messages[2].role``) so a user can find it in a long line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

NOVA_SCHEMA = "bedrock-conversation-2024"
# Nova training fails when a user or system prompt contains these (Nova user guide, "Preparing
# data for fine-tuning Understanding models").
NOVA_RESERVED = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")
NOVA_IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
NOVA_VIDEO_FORMATS = ("mov", "mkv", "mp4", "webm", "flv", "mpeg", "mpg", "wmv", "three_gp")
ROLES = ("user", "assistant")


def kind(value: object) -> str:
    """JSON's name for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _keys(
    record: dict[str, Any], *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[str]:
    problems = [f"missing key {key!r}" for key in required if key not in record]
    allowed = set(required) | set(optional)
    problems += [f"unexpected key {key!r}" for key in record if key not in allowed]
    return problems


def _text(value: object, where: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{where} must be a string, got {kind(value)}"]
    return [] if value.strip() else [f"{where} is empty"]


def check_prompt_completion(record: object) -> list[str]:
    """Titan and Llama fine-tuning: ``{"prompt": str, "completion": str}``."""
    if not isinstance(record, dict):
        return [f"record must be a JSON object, got {kind(record)}"]
    problems = _keys(record, required=("prompt", "completion"))
    for key in ("prompt", "completion"):
        if key in record:
            problems += _text(record[key], repr(key))
    return problems


def check_continued_pretraining(record: object) -> list[str]:
    """Titan continued pre-training: ``{"input": str}``."""
    if not isinstance(record, dict):
        return [f"record must be a JSON object, got {kind(record)}"]
    problems = _keys(record, required=("input",))
    if "input" in record:
        problems += _text(record["input"], "'input'")
    return problems


def _turn_order(roles: list[str], *, final_assistant: bool) -> list[str]:
    problems = []
    if roles and roles[0] != "user":
        problems.append(f"messages[0] must be from 'user', got {roles[0]!r}")
    if final_assistant and roles and roles[-1] != "assistant":
        problems.append(
            f"messages[{len(roles) - 1}] (the last) must be from 'assistant', got {roles[-1]!r}"
        )
    for index in range(1, len(roles)):
        if roles[index] == roles[index - 1]:
            problems.append(
                f"messages[{index}] repeats role {roles[index]!r} (roles must alternate)"
            )
    return problems


def _role(message: dict[str, Any], where: str) -> tuple[str | None, list[str]]:
    role = message.get("role")
    if role in ROLES:
        return str(role), []
    if role == "system":
        return None, [
            f"{where}.role 'system' is not allowed here; use the top-level 'system' field"
        ]
    if "role" in message:
        return None, [f"{where}.role must be 'user' or 'assistant', got {role!r}"]
    return None, []


def _messages(
    record: dict[str, Any],
    check_message: Callable[[dict[str, Any], str], list[str]],
    *,
    final_assistant: bool,
) -> list[str]:
    if "messages" not in record:
        return []
    messages = record["messages"]
    if not isinstance(messages, list):
        return [f"'messages' must be an array, got {kind(messages)}"]
    minimum = 2 if final_assistant else 1
    problems = []
    if len(messages) < minimum:
        problems.append(f"'messages' needs at least {minimum}, got {len(messages)}")
    roles: list[str] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            problems.append(f"{where} must be an object, got {kind(message)}")
            continue
        problems += [f"{where}: {p}" for p in _keys(message, required=("role", "content"))]
        role, role_problems = _role(message, where)
        problems += role_problems
        roles.append(role or "?")
        problems += [f"{where}: {p}" for p in check_message(message, role or "?")]
    if "?" not in roles:
        problems += _turn_order(roles, final_assistant=final_assistant)
    return problems


def _claude_content(message: dict[str, Any], role: str) -> list[str]:
    return _text(message["content"], "content") if "content" in message else []


def check_claude_messages(record: object) -> list[str]:
    """Claude 3 Haiku fine-tuning: ``{"system"?: str, "messages": [{"role", "content": str}…]}``."""
    if not isinstance(record, dict):
        return [f"record must be a JSON object, got {kind(record)}"]
    problems = _keys(record, required=("messages",), optional=("system",))
    if "system" in record and not isinstance(record["system"], str):
        problems.append(f"'system' must be a string, got {kind(record['system'])}")
    return problems + _messages(record, _claude_content, final_assistant=True)


def _reserved(text: str, where: str) -> list[str]:
    return [f"{where} contains reserved keyword {word!r}" for word in NOVA_RESERVED if word in text]


def _media(block: dict[str, Any], key: str, formats: tuple[str, ...], where: str) -> list[str]:
    media = block[key]
    if not isinstance(media, dict):
        return [f"{where}.{key} must be an object, got {kind(media)}"]
    problems = []
    if media.get("format") not in formats:
        problems.append(
            f"{where}.{key}.format must be one of {', '.join(formats)}, got {media.get('format')!r}"
        )
    source = media.get("source")
    location = source.get("s3Location") if isinstance(source, dict) else None
    uri = location.get("uri") if isinstance(location, dict) else None
    if not (isinstance(uri, str) and uri.startswith("s3://")):
        problems.append(f"{where}.{key}.source.s3Location.uri must be an s3:// URI")
    return problems


def _nova_block(block: object, where: str, role: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where} must be an object, got {kind(block)}"]
    present = [key for key in ("text", "image", "video") if key in block]
    if len(present) != 1 or len(block) != 1:
        return [f"{where} must have exactly one of 'text', 'image', 'video', got {sorted(block)}"]
    if present[0] == "text":
        problems = _text(block["text"], f"{where}.text")
        if role == "user" and isinstance(block["text"], str):
            problems += _reserved(block["text"], f"{where}.text")
        return problems
    if role != "user":
        return [f"{where}: {present[0]} is allowed only in user messages"]
    formats = NOVA_IMAGE_FORMATS if present[0] == "image" else NOVA_VIDEO_FORMATS
    return _media(block, present[0], formats, where)


def _nova_content(message: dict[str, Any], role: str) -> list[str]:
    if "content" not in message:
        return []
    content = message["content"]
    if not isinstance(content, list):
        return [f"content must be an array of blocks, got {kind(content)}"]
    if not content:
        return ["content is empty"]
    problems = []
    for index, block in enumerate(content):
        problems += _nova_block(block, f"content[{index}]", role)
    kinds = {key for block in content if isinstance(block, dict) for key in block}
    if {"image", "video"} <= kinds:
        problems.append("content mixes image and video (a record may carry one kind)")
    return problems


def _nova_system(system: object) -> list[str]:
    if not isinstance(system, list):
        return [f"'system' must be an array of {{'text': …}} blocks, got {kind(system)}"]
    problems = []
    for index, block in enumerate(system):
        where = f"system[{index}]"
        if not isinstance(block, dict) or set(block) != {"text"}:
            problems.append(f"{where} must be an object with only 'text'")
            continue
        problems += _text(block["text"], f"{where}.text")
        if isinstance(block["text"], str):
            problems += _reserved(block["text"], f"{where}.text")
    return problems


def check_nova_conversation(record: object, *, final_assistant: bool = True) -> list[str]:
    """Nova ``bedrock-conversation-2024``: schemaVersion, system blocks, messages of content blocks.

    ``final_assistant=False`` is for distillation, whose records are prompts the teacher answers.
    """
    if not isinstance(record, dict):
        return [f"record must be a JSON object, got {kind(record)}"]
    problems = _keys(record, required=("schemaVersion", "messages"), optional=("system",))
    if "schemaVersion" in record and not isinstance(record["schemaVersion"], str):
        problems.append(f"'schemaVersion' must be a string, got {kind(record['schemaVersion'])}")
    if "system" in record:
        problems += _nova_system(record["system"])
    return problems + _messages(record, _nova_content, final_assistant=final_assistant)


_SKIPPED_KEYS = frozenset({"role", "schemaVersion", "format", "source"})


def text_pieces(value: object) -> Iterator[str]:
    """Every piece of prose in a record (not roles, schema names or media references)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from text_pieces(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _SKIPPED_KEYS:
                yield from text_pieces(item)


def text_length(record: object) -> int:
    return sum(len(piece) for piece in text_pieces(record))
