"""The event-stream codec against the format's reference frames and botocore's own parser."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.exceptions import EventStreamError as BotocoreEventStreamError
from botocore.parsers import EventStreamJSONParser

from gateway.wire.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    Message,
    encode_event,
    encode_exception,
    encode_message,
)

# Reference frames published with botocore's event-stream tests (wire bytes, not code).
EMPTY = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2H\xeb}\x98\xc8\xff"
INT8 = b"\x00\x00\x00\x17\x00\x00\x00\x07)\x86\x01X\x04byte\x02\xff\xc2\xf8i\xdc"
INT16 = b"\x00\x00\x00\x19\x00\x00\x00\tq\x0e\x92>\x05short\x03\xff\xff\xb2|\xb6\xcc"
INT32 = (
    b"\x00\x00\x00\x1d\x00\x00\x00\r\x83\xe3\xf0\xe7\x07integer\x04\xff\xff\xff\xff\x8b\x8e\x12\xeb"
)
INT64 = (
    b"\x00\x00\x00\x1e\x00\x00\x00\x0e]J\xdb\x8d\x04long\x05"
    b"\xff\xff\xff\xff\xff\xff\xff\xffK\xc22\xda"
)
PAYLOAD_NO_HEADERS = b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'}\xc3e96"
ONE_STRING_HEADER = (
    b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10"
    b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1"
)
ALL_HEADER_TYPES = (
    b"\x00\x00\x00\x62\x00\x00\x00\x52\x03\xb5\xcb\x9c"
    b"\x010\x00\x011\x01\x012\x02\x02\x013\x03\x00\x03"
    b"\x014\x04\x00\x00\x00\x04\x015\x05\x00\x00\x00\x00\x00\x00\x00\x05"
    b"\x016\x06\x00\x05bytes\x017\x07\x00\x04utf8"
    b"\x018\x08\x00\x00\x00\x00\x00\x00\x00\x08\x019\x090123456789abcdef"
    b"\x63\x35\x36\x71"
)
ERROR_MESSAGE = (
    b"\x00\x00\x00\x52\x00\x00\x00\x42\xbf\x23\x63\x7e"
    b"\x0d:message-type\x07\x00\x05error"
    b"\x0b:error-code\x07\x00\x04code"
    b"\x0e:error-message\x07\x00\x07message"
    b"\x6b\x6c\xea\x3d"
)
REFERENCE_FRAMES = [
    EMPTY,
    INT8,
    INT16,
    INT32,
    INT64,
    PAYLOAD_NO_HEADERS,
    ONE_STRING_HEADER,
    ALL_HEADER_TYPES,
    ERROR_MESSAGE,
]
CORRUPT_FRAMES = {
    "total length": b"\x01\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'}\xc3e96",
    "payload": b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'\x8d\xc3e96",
    "header name": (
        b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent+type\x07\x00\x10"
        b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1"
    ),
    "headers length": (
        b"\x00\x00\x00=\xff\x00\x01\x02\x07\xfd\x83\x96\x0ccontent-type\x07\x00"
        b"\x10application/json{'foo':'bar'}\x8d\x9c\x08\xb1"
    ),
    "duplicate header": (
        b"\x00\x00\x00\x24\x00\x00\x00\x14\x4b\xb9\x82\xd0"
        b"\x04test\x04asdf\x04test\x04asdf\xf3\xf4\x75\x63"
    ),
}


def botocore_messages(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    messages: list[Any] = list(buffer)  # botocore-stubs mistype its iteration
    return [(message.headers, message.payload) for message in messages]


def as_botocore_value(value: object) -> object:
    """botocore leaves timestamps as epoch milliseconds and UUIDs as raw bytes."""
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if isinstance(value, uuid.UUID):
        return value.bytes
    return value


def decode_all(data: bytes) -> list[Message]:
    decoder = EventStreamDecoder()
    messages = decoder.feed(data)
    decoder.finish()
    return messages


@pytest.mark.parametrize("frame", REFERENCE_FRAMES)
def test_reference_frames_decode_as_botocore_decodes_them(frame: bytes) -> None:
    ours = decode_all(frame)
    theirs = botocore_messages(frame)
    assert len(ours) == len(theirs) == 1
    headers = {k: as_botocore_value(v) for k, v in ours[0].headers.items()}
    assert (headers, ours[0].payload) == theirs[0]


def test_typed_header_values() -> None:
    (message,) = decode_all(ALL_HEADER_TYPES)
    assert message.headers == {
        "0": True,
        "1": False,
        "2": 2,
        "3": 3,
        "4": 4,
        "5": 5,
        "6": b"bytes",
        "7": "utf8",
        "8": datetime(1970, 1, 1, 0, 0, 0, 8000, tzinfo=UTC),
        "9": uuid.UUID(bytes=b"0123456789abcdef"),
    }
    assert [decode_all(f)[0].headers for f in (INT8, INT16, INT32, INT64)] == [
        {"byte": -1},
        {"short": -1},
        {"integer": -1},
        {"long": -1},
    ]


def test_all_reference_frames_in_one_buffer_decode_in_order() -> None:
    ours = decode_all(b"".join(REFERENCE_FRAMES))
    assert [m.payload for m in ours] == [botocore_messages(f)[0][1] for f in REFERENCE_FRAMES]
    assert ours[-1].message_type == "error"


@pytest.mark.parametrize("name", sorted(CORRUPT_FRAMES))
def test_corrupt_reference_frames_are_rejected(name: str) -> None:
    with pytest.raises(EventStreamError):
        decode_all(CORRUPT_FRAMES[name])


def test_round_trip_keeps_headers_and_payload() -> None:
    headers = {":event-type": "contentBlockDelta", "x-ünïcode": "välue ✓", "empty": ""}
    payloads = [b"", b"{}", bytes(range(256)) * 40]
    frames = [encode_message(headers, payload) for payload in payloads]
    messages = decode_all(b"".join(frames))
    assert [m.payload for m in messages] == payloads
    assert all(dict(m.headers) == headers for m in messages)


def test_byte_at_a_time_feeding_gives_the_same_messages() -> None:
    stream = b"".join(
        [encode_event("messageStart", b'{"role":"assistant"}')]
        + [encode_event("contentBlockDelta", json.dumps({"i": i}).encode()) for i in range(5)]
        + [encode_exception("throttlingException", "slow down")]
    )
    decoder = EventStreamDecoder()
    messages: list[Message] = []
    for i in range(len(stream)):
        messages += decoder.feed(stream[i : i + 1])
    decoder.finish()
    assert decoder.buffered == 0
    assert messages == decode_all(stream)
    assert [m.event_type for m in messages[:6]] == ["messageStart"] + ["contentBlockDelta"] * 5
    assert messages[-1].exception_type == "throttlingException"


def test_truncated_stream_is_reported_by_finish() -> None:
    frame = encode_event("messageStop", b'{"stopReason":"end_turn"}')
    decoder = EventStreamDecoder()
    assert decoder.feed(frame[:-1]) == []
    assert decoder.buffered == len(frame) - 1
    with pytest.raises(EventStreamError, match="ended inside a frame"):
        decoder.finish()


def test_every_single_byte_corruption_is_detected() -> None:
    frame = encode_event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"hi"}}')
    for position in range(len(frame)):
        corrupted = bytearray(frame)
        corrupted[position] ^= 0x41
        with pytest.raises(EventStreamError):
            decode_all(bytes(corrupted))


def test_crc_mismatch_names_the_part_at_fault() -> None:
    frame = bytearray(encode_event("metadata", b"{}"))
    frame[-1] ^= 1
    with pytest.raises(EventStreamError, match="message CRC"):
        decode_all(bytes(frame))
    frame = bytearray(encode_event("metadata", b"{}"))
    frame[9] ^= 1
    with pytest.raises(EventStreamError, match="prelude CRC"):
        decode_all(bytes(frame))


def test_event_and_exception_headers() -> None:
    (event,) = decode_all(encode_event("messageStop", b'{"stopReason":"end_turn"}'))
    assert dict(event.headers) == {
        ":event-type": "messageStop",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    (exc,) = decode_all(encode_exception("modelStreamErrorException", 'a "quoted" reason'))
    assert exc.message_type == "exception"
    assert exc.headers[":content-type"] == "application/json"
    assert json.loads(exc.payload) == {"message": 'a "quoted" reason'}


def test_encoding_rejects_oversized_header_names() -> None:
    with pytest.raises(ValueError, match="1-255 bytes"):
        encode_message({"n" * 256: "v"}, b"")
    with pytest.raises(ValueError, match="65535"):
        encode_message({"n": "v" * 65536}, b"")


class _RawStream:
    """The one method botocore's EventStream reads from an HTTP body."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data, self._chunk = data, chunk

    def stream(self) -> Iterator[bytes]:
        for i in range(0, len(self._data), self._chunk):
            yield self._data[i : i + self._chunk]


def converse_stream_events(data: bytes) -> Iterator[dict[str, Any]]:
    """Parse bytes exactly as boto3's converse_stream does, through the service model."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    output: Any = model.operation_model("ConverseStream").output_shape
    shape = output.members["stream"]
    return iter(EventStream(_RawStream(data, 7), shape, EventStreamJSONParser(), "ConverseStream"))


def test_botocore_parses_our_frames_into_converse_stream_events() -> None:
    frames = [
        encode_event("messageStart", b'{"role":"assistant"}'),
        encode_event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}'),
        encode_event("messageStop", b'{"stopReason":"max_tokens"}'),
    ]
    assert list(converse_stream_events(b"".join(frames))) == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}}},
        {"messageStop": {"stopReason": "max_tokens"}},
    ]


def test_botocore_raises_our_exception_frames() -> None:
    data = encode_event("messageStart", b'{"role":"assistant"}') + encode_exception(
        "throttlingException", "Too many tokens"
    )
    events = converse_stream_events(data)
    assert next(events) == {"messageStart": {"role": "assistant"}}
    with pytest.raises(BotocoreEventStreamError) as info:
        next(events)
    assert info.value.response["Error"] == {
        "Code": "throttlingException",
        "Message": "Too many tokens",
    }


def test_header_blocks_shared_between_messages_are_read_only_and_stay_right() -> None:
    # More distinct header blocks than the decoder keeps decoded, fed twice: each message
    # still gets its own event type, and no message can change another's headers.
    stream = b"".join(encode_event(f"event{i}", b"{}") for i in range(600)) * 2
    messages = decode_all(stream)
    assert [m.event_type for m in messages] == [f"event{i}" for i in range(600)] * 2
    with pytest.raises(TypeError):
        messages[0].headers[":event-type"] = "changed"  # type: ignore[index]


def test_a_frame_split_across_reads_is_decoded_once_whole() -> None:
    frames = [encode_event("contentBlockDelta", b'{"i":%d}' % i) for i in range(3)]
    stream = b"".join(frames)
    cut = len(frames[0]) + 5  # inside the second frame
    decoder = EventStreamDecoder()
    first = decoder.feed(stream[:cut])
    assert [m.payload for m in first] == [b'{"i":0}']
    assert decoder.buffered == 5
    assert decoder.feed(stream[cut : cut + 3]) == []
    rest = decoder.feed(stream[cut + 3 :])
    assert [m.payload for m in rest] == [b'{"i":1}', b'{"i":2}']
    decoder.finish()


def test_after_a_corrupt_frame_more_input_raises_again() -> None:
    frame = bytearray(encode_event("metadata", b"{}"))
    frame[-1] ^= 1
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError):
        decoder.feed(bytes(frame))
    with pytest.raises(EventStreamError):
        decoder.feed(encode_event("metadata", b"{}"))


def test_a_small_frame_after_a_large_split_one_is_not_held_back() -> None:
    big = encode_event("contentBlockDelta", b'{"text":"' + b"x" * 500 + b'"}')
    small = encode_event("messageStop", b"{}")
    decoder = EventStreamDecoder()
    assert decoder.feed(big[:-1]) == []
    assert [m.event_type for m in decoder.feed(big[-1:] + small[:5])] == ["contentBlockDelta"]
    assert [m.event_type for m in decoder.feed(small[5:])] == ["messageStop"]
    decoder.finish()
