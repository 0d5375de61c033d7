"""Where the bedrock-runtime service model has blobs, and converting them at the JSON boundary.

On the wire a blob is base64 text; in Python (botocore, our canonical objects) it is bytes.
The trees are read once from botocore's service model, so the hot path never walks shapes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias

import orjson
from botocore.model import ListShape, OperationModel, ServiceModel, Shape, StructureShape

# Member name → subtree, for the members under which a blob lies; ``{}`` is the blob itself.
# Lists are transparent: a subtree applies to each item.
BlobTree: TypeAlias = dict[str, "BlobTree"]


@dataclass(frozen=True, slots=True)
class Shapes:
    """What the hot path needs from the bedrock-runtime service model."""

    request_blobs: BlobTree | None  # None: no blob anywhere
    response_blobs: BlobTree | None
    event_blobs: dict[str, BlobTree]  # only the event types that carry a blob
    events: frozenset[str]  # ConverseStream's event members
    exceptions: frozenset[str]  # its in-stream exception members (``throttlingException``)


def load_shapes(model: ServiceModel) -> Shapes:
    converse = model.operation_model("Converse")
    stream = _stream_shape(model.operation_model("ConverseStream"))
    event_blobs: dict[str, BlobTree] = {}
    events, exceptions = set(), set()
    for name, member in stream.members.items():
        if member.metadata.get("exception"):
            exceptions.add(name)
            continue
        events.add(name)
        tree = _blob_tree(member, frozenset())
        if tree is not None:
            event_blobs[name] = tree
    return Shapes(
        request_blobs=_blob_tree(_require(converse.input_shape), frozenset()),
        response_blobs=_blob_tree(_require(converse.output_shape), frozenset()),
        event_blobs=event_blobs,
        events=frozenset(events),
        exceptions=frozenset(exceptions),
    )


def _require(shape: Shape | None) -> StructureShape:
    if not isinstance(shape, StructureShape):
        raise TypeError("bedrock-runtime Converse shapes are structures")
    return shape


def _stream_shape(operation: OperationModel) -> StructureShape:
    member = _require(operation.output_shape).members["stream"]
    return _require(member)


def _blob_tree(shape: Shape, seen: frozenset[str]) -> BlobTree | None:
    if shape.type_name == "blob":
        return {}
    # A recursive shape is walked once; Bedrock's Converse shapes have no blob behind a cycle.
    if shape.name in seen:
        return None
    seen = seen | {shape.name}
    if isinstance(shape, ListShape):
        return _blob_tree(shape.member, seen)
    if not isinstance(shape, StructureShape) or shape.is_document_type:
        return None  # scalars and documents; Converse has no blob under a map
    tree: BlobTree = {}
    for name, member in shape.members.items():
        sub = _blob_tree(member, seen)
        if sub is not None:
            tree[member.serialization.get("name", name)] = sub
    return tree or None


def _walk(value: Any, tree: BlobTree, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with ``leaf`` applied at every blob of ``tree``; containers are copied only
    along changed paths, so the caller's objects (which a fallback may resend) stay as they are."""
    if not tree:
        return leaf(value)
    if isinstance(value, list):
        items: list[Any] | None = None
        for i, item in enumerate(value):
            new = _walk(item, tree, leaf)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    if isinstance(value, dict):
        members: dict[str, Any] | None = None
        for key, item in value.items():
            sub = tree.get(key)
            if sub is None:
                continue
            new = _walk(item, sub, leaf)
            if new is not item:
                if members is None:
                    members = dict(value)
                members[key] = new
        return value if members is None else members
    return value


def _b64encode(value: Any) -> Any:
    # botocore's rest-json serializer: bytes as they are, text UTF-8 encoded first.
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return value


def _b64decode(value: Any) -> Any:
    return base64.b64decode(value) if isinstance(value, str) else value


def encode_body(data: dict[str, Any], blobs: BlobTree | None) -> bytes:
    """The JSON body botocore would send for these Converse parameters (TypeError if some
    value is not JSON, where botocore raises ParamValidationError)."""
    return orjson.dumps(data if blobs is None else _walk(data, blobs, _b64encode))


def decode_body(data: Any, blobs: BlobTree | None) -> Any:
    """A parsed response with its blobs as bytes, as botocore's parser returns them."""
    return data if blobs is None else _walk(data, blobs, _b64decode)


@lru_cache(maxsize=1)
def runtime_shapes() -> Shapes:
    """The shapes of the installed botocore's bedrock-runtime model (read once, ~50 ms)."""
    import botocore.session

    return load_shapes(botocore.session.get_session().get_service_model("bedrock-runtime"))


def _bytes_as_base64(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_wire(value: Any) -> bytes:
    """JSON for the Bedrock wire: any bytes left in ``value`` are blobs, sent as base64."""
    return orjson.dumps(value, default=_bytes_as_base64)
