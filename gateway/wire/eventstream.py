"""The ``application/vnd.amazon.eventstream`` frame codec used by Bedrock's streaming calls.

A frame is::

    prelude   total length (u32) | headers length (u32) | CRC32 of those 8 bytes
    headers   repeated: name length (u8) | name | value type (u8) | value
    payload   opaque bytes (JSON for Bedrock events)
    trailer   CRC32 of everything before it

All integers are big-endian. Encoding writes string headers only, which is all Bedrock sends;
decoding reads every header type the format defines. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from zlib import crc32

CONTENT_TYPE = "application/vnd.amazon.eventstream"

# botocore refuses frames beyond these sizes; refusing them here too keeps a corrupt length
# field from making the decoder buffer without bound.
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024

_PRELUDE_LENGTH = 12
_OVERHEAD = _PRELUDE_LENGTH + 4
_LENGTHS = struct.Struct("!II")
_PRELUDE = struct.Struct("!III")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_INTS = {
    2: struct.Struct("!b"),
    3: struct.Struct("!h"),
    4: struct.Struct("!i"),
    5: struct.Struct("!q"),
}
_I64 = _INTS[5]
_STRING_TYPE = 7
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

HeaderValue = bool | int | bytes | str | datetime | uuid.UUID


class EventStreamError(ValueError):
    """A frame is corrupt or malformed: a CRC mismatch, a bad length or a bad header."""


@dataclass(slots=True)
class Message:
    """One decoded frame. (Not frozen: a frozen dataclass's ``__init__`` costs twice as much,
    and one runs for every event of every stream.)"""

    headers: Mapping[str, HeaderValue]
    payload: bytes

    def _str_header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """``event``, ``exception`` or ``error``."""
        return self._str_header(":message-type")

    @property
    def event_type(self) -> str | None:
        return self._str_header(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self._str_header(":exception-type")


@lru_cache(maxsize=256)
def _string_header(name: str, value: str) -> bytes:
    # Cached because a stream repeats the same few (name, value) pairs for every event.
    raw_name = name.encode()
    raw_value = value.encode()
    if not 0 < len(raw_name) <= 255:
        raise ValueError(f"event-stream header name must be 1-255 bytes: {name!r}")
    if len(raw_value) > 0xFFFF:
        raise ValueError(f"event-stream header {name!r} value exceeds 65535 bytes")
    return (
        bytes((len(raw_name),))
        + raw_name
        + bytes((_STRING_TYPE,))
        + _U16.pack(len(raw_value))
        + raw_value
    )


def _frame(header_bytes: bytes, payload: bytes) -> bytes:
    if len(header_bytes) > MAX_HEADERS_LENGTH:
        raise ValueError(f"event-stream headers exceed {MAX_HEADERS_LENGTH} bytes")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise ValueError(f"event-stream payload exceeds {MAX_PAYLOAD_LENGTH} bytes")
    lengths = _LENGTHS.pack(_OVERHEAD + len(header_bytes) + len(payload), len(header_bytes))
    prelude = lengths + _U32.pack(crc32(lengths))
    # The message CRC runs on from the prelude's over the rest: the frame is joined once.
    crc = crc32(payload, crc32(header_bytes, crc32(prelude)))
    return b"".join((prelude, header_bytes, payload, _U32.pack(crc)))


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one frame whose headers are all strings."""
    return _frame(b"".join(_string_header(k, v) for k, v in headers.items()), payload)


_JSON_EVENT_TAIL = _string_header(":content-type", "application/json") + _string_header(
    ":message-type", "event"
)
_JSON_EXCEPTION_TAIL = _string_header(":content-type", "application/json") + _string_header(
    ":message-type", "exception"
)


def encode_event(event_type: str, payload: bytes) -> bytes:
    """Encode an event frame (``:message-type`` event) carrying a JSON payload."""
    return _frame(_event_headers(event_type), payload)


@lru_cache(maxsize=64)
def _event_headers(event_type: str) -> bytes:
    return _string_header(":event-type", event_type) + _JSON_EVENT_TAIL


def encode_exception(exception_type: str, message: str) -> bytes:
    """Encode an in-stream exception frame.

    botocore looks ``exception_type`` up among the stream's members (``throttlingException``,
    ``modelStreamErrorException``, ...) and raises ``EventStreamError`` with that code.
    """
    payload = json.dumps({"message": message}, separators=(",", ":")).encode()
    return _frame(_string_header(":exception-type", exception_type) + _JSON_EXCEPTION_TAIL, payload)


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(data)
    try:
        while pos < end:
            name_len = data[pos]
            name = data[pos + 1 : pos + 1 + name_len].decode()
            pos += 1 + name_len
            kind = data[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _INTS:
                fmt = _INTS[kind]
                (value,) = fmt.unpack_from(data, pos)
                pos += fmt.size
            elif kind in (6, 7):
                (size,) = _U16.unpack_from(data, pos)
                raw = data[pos + 2 : pos + 2 + size]
                if len(raw) != size:
                    raise EventStreamError(f"header {name!r} value is truncated")
                value = raw.decode() if kind == _STRING_TYPE else raw
                pos += 2 + size
            elif kind == 8:
                (millis,) = _I64.unpack_from(data, pos)
                value = _EPOCH + timedelta(milliseconds=millis)
                pos += 8
            elif kind == 9:
                if pos + 16 > end:
                    raise EventStreamError(f"header {name!r} value is truncated")
                value = uuid.UUID(bytes=data[pos : pos + 16])
                pos += 16
            else:
                raise EventStreamError(f"header {name!r} has unknown value type {kind}")
            if name in headers:
                raise EventStreamError(f"duplicate header {name!r}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise EventStreamError(f"malformed event-stream headers: {exc}") from exc
    return headers


def _check_crc(part: str, expected: int, actual: int) -> None:
    if expected != actual:
        raise EventStreamError(
            f"{part} CRC mismatch: frame says {expected:#010x}, bytes give {actual:#010x}"
        )


# Bedrock repeats a few header blocks (event type, content type, message type) in every frame
# of every stream: each distinct block is decoded once, into a read-only mapping that all the
# messages with it share. Bounded, against a peer whose blocks all differ.
_HEADERS: dict[bytes, Mapping[str, HeaderValue]] = {}
_HEADER_BLOCKS = 256


def _remember(raw: bytes) -> Mapping[str, HeaderValue]:
    headers = MappingProxyType(_decode_headers(raw))
    if len(_HEADERS) >= _HEADER_BLOCKS:
        _HEADERS.clear()
    _HEADERS[raw] = headers
    return headers


class EventStreamDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back the complete frames.

    After it raises ``EventStreamError`` the stream is unusable; the bad bytes stay buffered,
    so feeding more raises again rather than resynchronising on garbage.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._needed = 0  # bytes the buffered frame needs before it can be decoded

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        if buffer:
            # A frame spread over reads is collected here and copied out once it is whole.
            buffer += data
            if len(buffer) < self._needed:
                return []
            data = bytes(buffer)
            buffer.clear()
        messages: list[Message] = []
        pos, end = 0, len(data)
        self._needed = _PRELUDE_LENGTH  # until the next frame's prelude says its length
        try:
            while end - pos >= _PRELUDE_LENGTH:
                total, headers_len, prelude_crc = _PRELUDE.unpack_from(data, pos)
                _check_crc("prelude", prelude_crc, crc32(data[pos : pos + 8]))
                payload_len = total - headers_len - _OVERHEAD
                if headers_len > MAX_HEADERS_LENGTH:
                    raise EventStreamError(
                        f"headers length {headers_len} exceeds {MAX_HEADERS_LENGTH}"
                    )
                if payload_len < 0 or payload_len > MAX_PAYLOAD_LENGTH:
                    raise EventStreamError(
                        f"invalid frame lengths: total {total}, headers {headers_len}"
                    )
                if end - pos < total:
                    self._needed = total
                    break
                body_end = pos + total - 4
                (message_crc,) = _U32.unpack_from(data, body_end)
                _check_crc("message", message_crc, crc32(memoryview(data)[pos:body_end]))
                headers_end = pos + _PRELUDE_LENGTH + headers_len
                raw = data[pos + _PRELUDE_LENGTH : headers_end]
                headers = _HEADERS.get(raw)
                if headers is None:
                    headers = _remember(raw)
                messages.append(Message(headers, data[headers_end:body_end]))
                pos += total
        except EventStreamError:
            self._needed = 0
            buffer += memoryview(data)[pos:]
            raise
        if pos < end:
            buffer += memoryview(data)[pos:]
        return messages

    def finish(self) -> None:
        """Call at end of input: raises if the stream stopped in the middle of a frame."""
        if self._buffer:
            raise EventStreamError(f"stream ended inside a frame ({len(self._buffer)} bytes left)")
