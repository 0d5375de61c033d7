"""Check a request against the AWS service model before sending it.

botocore validates types and required members client-side, but not a string's ``pattern``, its
``min``/``max`` length, or a number's range: Bedrock refuses those only when the request arrives,
after any upload. ``check_request`` walks the operation's input shape once, generically, and names
every member that breaks its shape (``customModelName 'my.job-model' does not match …``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from customize.errors import UsageError

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape


@lru_cache(maxsize=8)
def service_model(service: str) -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: leave that member to the service
        return None


def _scalar(shape: Shape, value: Any, where: str) -> Iterator[str]:
    meta = shape.metadata
    if shape.type_name == "string" and isinstance(value, str):
        if "min" in meta and len(value) < meta["min"]:
            yield f"{where} {value!r} is shorter than {meta['min']} characters"
        if "max" in meta and len(value) > meta["max"]:
            yield f"{where} is {len(value)} characters, more than the {meta['max']} allowed"
        # AWS patterns are matched against the whole value (several are written unanchored).
        compiled = _pattern(meta["pattern"]) if "pattern" in meta else None
        if compiled is not None and not compiled.fullmatch(value):
            yield f"{where} {value!r} does not match the pattern {meta['pattern']}"
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            yield f"{where} {value!r} must be one of {', '.join(enum)}"
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(
        value, int | float
    ):
        if "min" in meta and value < meta["min"]:
            yield f"{where} is {value}, below the minimum {meta['min']}"
        if "max" in meta and value > meta["max"]:
            yield f"{where} is {value}, above the maximum {meta['max']}"


def shape_problems(shape: Shape, value: Any, where: str) -> Iterator[str]:
    """Every way ``value`` breaks ``shape``'s pattern/length/range rules, with its path."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members  # type: ignore[attr-defined]
        for name, item in value.items():
            if name in members:
                yield from shape_problems(members[name], item, f"{where}.{name}" if where else name)
    elif kind == "list" and isinstance(value, list | tuple):
        meta = shape.metadata
        if "min" in meta and len(value) < meta["min"]:
            yield f"{where} has {len(value)} items, fewer than {meta['min']}"
        if "max" in meta and len(value) > meta["max"]:
            yield f"{where} has {len(value)} items, more than the {meta['max']} allowed"
        member = shape.member  # type: ignore[attr-defined]
        for index, item in enumerate(value):
            yield from shape_problems(member, item, f"{where}[{index}]")
    elif kind == "map" and isinstance(value, Mapping):
        key, item_shape = shape.key, shape.value  # type: ignore[attr-defined]
        for name, item in value.items():
            yield from shape_problems(key, name, f"{where} key")
            yield from shape_problems(item_shape, item, f"{where}[{name!r}]")
    else:
        yield from _scalar(shape, value, where)


def operation(service: str, name: str) -> OperationModel:
    return service_model(service).operation_model(name)


def request_problems(service: str, operation_name: str, params: Mapping[str, Any]) -> list[str]:
    shape = operation(service, operation_name).input_shape
    return [] if shape is None else list(shape_problems(shape, params, ""))


def check_request(
    service: str, operation_name: str, params: Mapping[str, Any], *, hint: str = ""
) -> None:
    """Raise ``UsageError`` naming every member Bedrock would refuse; ``hint`` says what to do."""
    problems = request_problems(service, operation_name, params)
    if problems:
        suffix = f"; {hint}" if hint else ""
        raise UsageError(f"{operation_name} would be refused: {'; '.join(problems)}{suffix}")


def enum_values(service: str, shape_name: str) -> tuple[str, ...]:
    return tuple(getattr(service_model(service).shape_for(shape_name), "enum", ()))
