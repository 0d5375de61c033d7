"""Bedrock-surface validation against botocore's bedrock-runtime service model.

The limits are the model's own (``stopSequences`` up to 2,500 items, ``temperature`` 0 to 1,
text of at least one character...), read from the installed botocore rather than copied here,
so they follow Bedrock. Types are checked strictly as botocore does (``"3"`` is not an
integer). Rules the model cannot state (a conversation starts with the user, text is not blank)
follow Bedrock's own ValidationException messages. Document-typed members (tool input, JSON
schemas, ``additionalModelRequestFields``) are free-form and not walked.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from functools import lru_cache
from typing import Any, cast

from botocore.model import ListShape, MapShape, Shape, StructureShape

from gateway.errors import InvalidRequest

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "blob": (bytes, bytearray),
}


@lru_cache(maxsize=1)
def converse_input() -> StructureShape:
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("Converse").input_shape
    assert isinstance(shape, StructureShape)
    return shape


def check_converse(body: dict[str, Any]) -> None:
    """Raise InvalidRequest (with ``param``) where ``body`` breaks the Converse input shape.
    ``body`` has ``modelId`` removed and its blobs decoded to bytes."""
    if not _compiled_converse()(body):
        # Only a body that breaks a rule walks the shapes again, to name the rule and path.
        shape = converse_input()
        _structure(body, shape, _body_members(shape), "")
    _conversation_rules(body)


def _body_members(shape: StructureShape) -> dict[str, Shape]:
    return {k: v for k, v in shape.members.items() if k != "modelId"}


Check = Callable[[Any], bool]


@lru_cache(maxsize=1)
def _compiled_converse() -> Check:
    """The same rules as ``_check``, compiled once into closures that only say yes or no: the
    hot path builds no path strings and looks nothing up in the shapes."""
    shape = converse_input()
    return _compile_structure(shape, _body_members(shape), {})


def _compile(shape: Shape, seen: dict[str, Check]) -> Check:
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return _anything
        return _compile_structure(shape, shape.members, seen)
    if isinstance(shape, ListShape | MapShape):
        low, high = _bounds(shape)
        if isinstance(shape, ListShape):
            item = _compile(shape.member, seen)
            return lambda v: isinstance(v, list) and low <= len(v) <= high and all(map(item, v))
        value = _compile(shape.value, seen)
        return lambda v: (
            isinstance(v, dict) and low <= len(v) <= high and all(map(value, v.values()))
        )
    return _compile_scalar(shape)


def _compile_structure(
    shape: StructureShape, members: dict[str, Shape], seen: dict[str, Check]
) -> Check:
    if shape.name in seen:  # a recursive shape (documents nest): the closure is in the making
        return lambda v: seen[shape.name](v)
    checks: dict[str, Check] = {}
    required = tuple(name for name in shape.required_members if name in members)
    union = bool(shape.metadata.get("union"))

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for name in required:
            if value.get(name) is None:
                return False
        present = 0
        for key, item in value.items():
            member = checks.get(key)
            if member is None:
                return False  # not a known field
            if item is not None:
                present += 1
                if not member(item):
                    return False
        return not union or present == 1

    seen[shape.name] = check
    for name, member in members.items():
        checks[name] = _compile(member, seen)
    return check


def _compile_scalar(shape: Shape) -> Check:
    types = _JSON_TYPES.get(shape.type_name)
    if types is None:
        return _anything
    low, high = _bounds(shape)
    if shape.type_name in ("string", "blob"):
        enum = tuple(getattr(shape, "enum", None) or ())

        def sized(v: Any) -> bool:
            if not isinstance(v, types):
                return False
            return low <= len(cast(Sized, v)) <= high and (not enum or v in enum)

        return sized
    if shape.type_name == "boolean":
        return lambda v: isinstance(v, bool)

    def number(v: Any) -> bool:
        # bool is an int in Python; botocore refuses it for numbers, and so do we. NaN fails
        # the comparisons; infinities are refused whatever the bounds.
        if not isinstance(v, types) or isinstance(v, bool):
            return False
        return low <= cast(float, v) <= high and v not in (_INF, -_INF)

    return number


_INF = float("inf")


def _bounds(shape: Shape) -> tuple[float, float]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    return (-_INF if low is None else low), (_INF if high is None else high)


def _anything(value: Any) -> bool:
    return True


def _fail(path: str, constraint: str) -> InvalidRequest:
    where = path or "request body"
    return InvalidRequest(
        f"1 validation error detected: value at '{where}' failed to satisfy constraint: "
        f"{constraint}",
        param=path or None,
    )


def _check(value: Any, shape: Shape, path: str) -> None:
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return
        _structure(value, shape, shape.members, path)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise _fail(path, "Member must be a list")
        _length(len(value), shape, path, "have length")
        for i, item in enumerate(value):
            _check(item, shape.member, f"{path}.{i}")
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise _fail(path, "Member must be a map")
        _length(len(value), shape, path, "have length")
        for key, item in value.items():
            _check(item, shape.value, f"{path}.{key}")
    else:
        _scalar(value, shape, path)


def _structure(value: Any, shape: StructureShape, members: dict[str, Shape], path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, "Member must be an object")
    prefix = f"{path}." if path else ""
    for name in shape.required_members:
        if name in members and value.get(name) is None:
            raise _fail(prefix + name, "Member must not be null")
    unknown = [k for k in value if k not in members]
    if unknown:
        raise _fail(prefix + unknown[0], "Member is not a known field")
    present = [k for k, v in value.items() if v is not None]
    if shape.metadata.get("union") and len(present) != 1:
        raise _fail(path, f"Member must set exactly one of: {', '.join(members)}")
    for name in present:
        _check(value[name], members[name], prefix + name)


def _scalar(value: Any, shape: Shape, path: str) -> None:
    types = _JSON_TYPES.get(shape.type_name)
    if types is None:
        return  # timestamps: Converse's input has none
    # bool is an int in Python; botocore refuses it for numbers, and so do we.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise _fail(path, f"Member must be of type {shape.type_name}")
    if isinstance(value, str | bytes | bytearray):
        _length(len(value), shape, path, "have length")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise _fail(path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise _fail(path, "Member must be a finite number")
        _length(value, shape, path, "have value")


def _length(size: float, shape: Shape, path: str, what: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        raise _fail(path, f"Member must {what} greater than or equal to {low}")
    if high is not None and size > high:
        raise _fail(path, f"Member must {what} less than or equal to {high}")


def _conversation_rules(body: dict[str, Any]) -> None:
    messages = body.get("messages") or []
    if messages and messages[0].get("role") != "user":
        raise InvalidRequest(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message.",
            param="messages.0.role",
        )
    blocks = [
        (block, "ContentBlock", f"messages.{i}.content.{j}")
        for i, message in enumerate(messages)
        for j, block in enumerate(message.get("content") or ())
    ]
    blocks += [
        (b, "SystemContentBlock", f"system.{k}") for k, b in enumerate(body.get("system") or ())
    ]
    for block, kind, where in blocks:
        text = block.get("text")
        if isinstance(text, str) and not text.strip():
            raise InvalidRequest(
                f"The text field in the {kind} object at {where} is blank. Add text to the "
                "text field, and try again.",
                param=f"{where}.text",
            )


def stop_sequences_limit() -> int:
    """How many stop sequences Converse takes (2,500 in the current service model)."""
    stops = converse_input().members["inferenceConfig"]
    assert isinstance(stops, StructureShape)
    return int(stops.members["stopSequences"].metadata.get("max", 2500))
