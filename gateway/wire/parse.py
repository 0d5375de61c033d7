"""Turning request bytes into validated models, with errors that name the field at fault."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from gateway.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def load_json(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc) from None


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "none", "dict", "list", "bytes"})


def _is_field(part: int | str) -> bool:
    """Whether a pydantic ``loc`` part names a field or index, rather than the member of a union
    (``str``, ``list[dict[str,any]]``, ``literal['none','auto']``, a model's class name)."""
    if isinstance(part, int):
        return True
    return not (
        part in _TYPE_NAMES or "[" in part or "'" in part or "-" in part or part[:1].isupper()
    )


def invalid_from(exc: ValidationError) -> InvalidRequest:
    """The first problem, named by its path (``messages.0.content``), plus a count of the rest.
    Never the offending value: messages reach logs and values are request data."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    paths = [tuple(p for p in e["loc"] if _is_field(p)) for e in errors]
    # A union reports one error per member (``str``, then ``list``...): the deepest one under
    # the first path says where the value went wrong (``messages.0.content.0``, not ``content``).
    best = max(
        (i for i, p in enumerate(paths) if p[: len(paths[0])] == paths[0]),
        key=lambda i: len(paths[i]),
    )
    first = errors[best]
    param = ".".join(str(p) for p in paths[best]) or None
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidRequest(message, param=param)
