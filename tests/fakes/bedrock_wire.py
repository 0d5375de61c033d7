"""A loopback server that speaks the Bedrock runtime wire protocol (Converse and ConverseStream).

The real boto3 / aiobotocore ``bedrock-runtime`` clients reach it through ``endpoint_url``. Every
call is scripted by a handler (``FakeRequest -> Reply``) that picks the answer, usage, latency,
errors and in-stream exceptions; ``BedrockWireServer.calls`` records what arrived.

In tests::

    with BedrockWireServer(fault_sequence(["ThrottlingException", None])) as server:
        client = boto3.client("bedrock-runtime", endpoint_url=server.endpoint_url, ...)

As a process (the benchmark runs it so)::

    python -m tests.fakes.bedrock_wire --port 0 --latency-ms 20 --chunks 8

prints ``READY <port>`` once it accepts connections. SigV4 is not checked; request bodies are.

Fault scripts for resilience tests and the fault bench are in ``tests/fakes/bedrock_faults.py``.
``BedrockWireApp.counts`` counts the calls per model id (kept even when calls are not
recorded); a process serves them as JSON on ``GET /_stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import itertools
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session
import orjson
import pytest
import uvicorn
from botocore.model import ServiceModel

from gateway.wire.eventstream import CONTENT_TYPE, encode_event, encode_exception
from tests.fakes import titan_embed

# Status codes from the bedrock-runtime service model (botocore/data/bedrock-runtime).
ERROR_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "ConflictException": 400,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "ModelStreamErrorException": 424,
    "ModelTimeoutException": 408,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
    "ValidationException": 400,
}
# A word with the spaces after it; leading spaces form their own piece, so pieces join to text.
_WORD = re.compile(r"\S+\s*|\s+")


@functools.cache
def _service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("bedrock-runtime")


@functools.cache
def stream_exceptions() -> frozenset[str]:
    """Exceptions ConverseStream can send inside its stream (``throttlingException``, ...)."""
    output: Any = _service_model().operation_model("ConverseStream").output_shape
    members = output.members["stream"].members.items()
    return frozenset(name for name, shape in members if shape.metadata.get("exception"))


@functools.cache
def _request_fields() -> frozenset[str]:
    request: Any = _service_model().operation_model("Converse").input_shape
    return frozenset(request.members) - {"modelId"}


def stream_member(code: str) -> str:
    """``ThrottlingException`` -> ``throttlingException``, the name used inside a stream."""
    return code[:1].lower() + code[1:]


def word_count(text: str) -> int:
    return len(text.split())


def split_even(text: str, parts: int) -> list[str]:
    """Split ``text`` into exactly ``parts`` consecutive pieces (some empty if text is short)."""
    bounds = [len(text) * i // parts for i in range(parts + 1)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class FakeRequest:
    """One Converse / ConverseStream call that passed validation, as the server saw it."""

    index: int  # 0-based arrival order on this server
    model_id: str  # URL-decoded
    body: dict[str, Any]
    headers: dict[str, str]  # names lower-cased
    stream: bool
    arrived: float = 0.0  # time.monotonic() when the call arrived (tests share the clock)

    def texts(self) -> Iterator[str]:
        """Every text block of the system prompt and the messages, in order."""
        for block in self.body.get("system", []):
            if "text" in block:
                yield block["text"]
        for message in self.body["messages"]:
            for block in message["content"]:
                if "text" in block:
                    yield block["text"]

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.body["messages"]):
            if message["role"] == "user":
                return " ".join(b["text"] for b in message["content"] if "text" in b)
        return ""

    @property
    def input_words(self) -> int:
        return sum(word_count(t) for t in self.texts())


@dataclass(frozen=True)
class Reply:
    """What to answer one call with.

    ``chunks``, when given, are the stream's text deltas and define the answer; otherwise the
    answer is ``text`` streamed one word per delta. Token counts left at ``None`` default to
    word counts (input: system + messages; output: the answer); cache counts are sent only
    when set. ``error`` answers with that Bedrock error instead; ``stream_error`` ends a
    stream with that in-stream exception after ``stream_error_after`` events.
    """

    text: str = ""
    chunks: Sequence[str] | None = None
    stop_reason: str = "end_turn"
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    latency_s: float = 0.0
    event_interval_s: float = 0.0
    error: str | None = None
    error_message: str = "scripted error"
    retry_after: str | None = None  # a Retry-After header on the error reply
    stream_error: str | None = None
    stream_error_after: int = 0

    def __post_init__(self) -> None:
        if self.error is not None and self.error not in ERROR_STATUS:
            raise ValueError(f"unknown Bedrock error code {self.error!r}")
        if self.stream_error is not None and stream_member(self.stream_error) not in (
            stream_exceptions()
        ):
            raise ValueError(f"{self.stream_error!r} is not a ConverseStream exception")
        if self.chunks is not None and self.text and "".join(self.chunks) != self.text:
            raise ValueError("chunks must join to text")

    @property
    def answer(self) -> str:
        return "".join(self.chunks) if self.chunks is not None else self.text

    def deltas(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return _WORD.findall(self.text) or [self.text]

    def usage(self, request: FakeRequest) -> dict[str, int]:
        inputs = request.input_words if self.input_tokens is None else self.input_tokens
        outputs = word_count(self.answer) if self.output_tokens is None else self.output_tokens
        usage = {"inputTokens": inputs, "outputTokens": outputs}
        if self.cache_read_tokens is not None:
            usage["cacheReadInputTokens"] = self.cache_read_tokens
        if self.cache_write_tokens is not None:
            usage["cacheWriteInputTokens"] = self.cache_write_tokens
        # Bedrock's total counts cached input tokens too.
        usage["totalTokens"] = sum(usage.values())
        return usage


Handler = Callable[[FakeRequest], Reply]


def echo_handler(request: FakeRequest) -> Reply:
    """Answer with the last user message's text."""
    return Reply(text=request.last_user_text)


def fault_sequence(codes: Sequence[str | None], then: Handler = echo_handler) -> Handler:
    """Return the i-th error code on the handler's i-th call (``None``: succeed), then ``then``."""
    for code in codes:
        if code is not None and code not in ERROR_STATUS:
            raise ValueError(f"unknown Bedrock error code {code!r}")
    counter = itertools.count()

    def handler(request: FakeRequest) -> Reply:
        i = next(counter)
        code = codes[i] if i < len(codes) else None
        return Reply(error=code, error_message=f"scripted {code}") if code else then(request)

    return handler


def validate_converse_body(body: object) -> str | None:
    """Bedrock's ValidationException message for a malformed Converse body, else ``None``."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    extra = sorted(set(body) - _request_fields())
    if extra:
        return f"Malformed input request: extraneous key [{extra[0]}] is not permitted."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message. Try again with a conversation."
    previous = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: must be 'user' or 'assistant'."
        if i == 0 and message["role"] != "user":
            return "A conversation must start with a user message. Try again with a conversation."
        if message["role"] == previous:
            return "A conversation must alternate between user and assistant roles."
        previous = message["role"]
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"messages.{i}.content: must contain at least one content block."
        for j, block in enumerate(content):
            if not isinstance(block, dict) or len(block) != 1:
                return f"messages.{i}.content.{j}: a content block must set exactly one member."
            if "text" in block and (not isinstance(block["text"], str) or not block["text"]):
                return f"messages.{i}.content.{j}.text: the text field is blank."
    return _validate_options(body)


def _validate_options(body: dict[str, Any]) -> str | None:
    system = body.get("system", [])
    if not isinstance(system, list) or not all(isinstance(b, dict) for b in system):
        return "system: must be a list of system content blocks."
    config = body.get("inferenceConfig", {})
    if not isinstance(config, dict):
        return "inferenceConfig: must be an object."
    max_tokens = config.get("maxTokens", 1)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return "inferenceConfig.maxTokens: must be an integer of at least 1."
    for name in ("temperature", "topP"):
        value = config.get(name, 0)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            return f"inferenceConfig.{name}: must be between 0 and 1."
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        return "inferenceConfig.stopSequences: must be a list of strings."
    return None


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_JSON = (b"content-type", b"application/json")
_STREAM = (b"content-type", CONTENT_TYPE.encode())


class BedrockWireApp:
    """The raw ASGI app: routing, validation, and the two response encodings."""

    def __init__(self, handler: Handler, *, record: bool = True) -> None:
        self.handler = handler
        # A long-running process (the benchmark's) must not keep every request it served.
        self.record = record
        self.calls: list[FakeRequest] = []
        self.served = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.invocations: list[dict[str, Any]] = []  # InvokeModel bodies (titan_embed.py)
        # Set to an error code to make InvokeModel fail (a throttled embedder, say).
        self.invoke_error: str | None = None

    async def _invoke(self, send: Send, model_id: str, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        problem = titan_embed.validate(model_id, body)
        if problem is not None:
            await _send_error(send, "ValidationException", problem)
            return
        self.invocations.append(body)
        self.counts[model_id] += 1
        if self.invoke_error is not None:
            await _send_error(send, self.invoke_error, "scripted InvokeModel failure")
            return
        await _send_json(send, titan_embed.embed(body))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.monotonic()
        raw = await _read_body(receive)
        # raw_path keeps %2F inside an ARN model id distinct from the path's own slashes.
        parts = scope["raw_path"].split(b"?", 1)[0].split(b"/")
        if scope["method"] == "GET" and parts[1:] == [b"_stats"]:
            await _send_json(send, {"served": self.served, "by_model": dict(self.counts)})
            return
        operation = parts[3] if len(parts) == 4 and parts[1] == b"model" else b""
        if scope["method"] == "POST" and operation == b"invoke":
            await self._invoke(send, unquote(parts[2].decode()), raw)
            return
        if scope["method"] != "POST" or operation not in (b"converse", b"converse-stream"):
            await _send_error(send, "UnknownOperationException", "Unknown operation", 404)
            return
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        problem = validate_converse_body(body)
        if problem is not None:
            await _send_error(send, "ValidationException", problem)
            return
        request = FakeRequest(
            index=self.served,
            model_id=unquote(parts[2].decode()),
            body=body,
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            stream=operation == b"converse-stream",
            arrived=started,
        )
        self.served += 1
        self.counts[request.model_id] += 1
        if self.record:
            self.calls.append(request)
        try:
            reply = self.handler(request)
        except Exception as exc:  # a broken script should show up, not hang the client
            await _send_error(send, "InternalServerException", f"fake handler failed: {exc!r}")
            return
        if reply.latency_s:
            await asyncio.sleep(reply.latency_s)
        if reply.error is not None:
            await _send_error(send, reply.error, reply.error_message, retry_after=reply.retry_after)
        elif request.stream:
            await _send_stream(send, request, reply, started)
        else:
            await _send_converse(send, request, reply, started)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _headers(content_type: tuple[bytes, bytes], *extra: tuple[bytes, bytes]) -> list[Any]:
    return [content_type, (b"x-amzn-requestid", str(uuid.uuid4()).encode()), *extra]


async def _send_error(
    send: Send, code: str, message: str, status: int | None = None, retry_after: str | None = None
) -> None:
    # Bedrock appends a namespace to the code; botocore strips everything after ':'.
    error_type = f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/".encode()
    body = orjson.dumps({"message": message})
    extra = [(b"retry-after", retry_after.encode())] if retry_after else []
    await send(
        {
            "type": "http.response.start",
            "status": status if status is not None else ERROR_STATUS.get(code, 400),
            "headers": _headers(
                _JSON,
                (b"x-amzn-errortype", error_type),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, content: object) -> None:
    body = orjson.dumps(content)
    headers = _headers(_JSON, (b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _send_converse(send: Send, request: FakeRequest, reply: Reply, started: float) -> None:
    body = orjson.dumps(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.answer}]}},
            "stopReason": reply.stop_reason,
            "usage": reply.usage(request),
            "metrics": {"latencyMs": _elapsed_ms(started)},
        }
    )
    headers = _headers(_JSON, (b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _stream_events(request: FakeRequest, reply: Reply, started: float) -> Iterator[bytes]:
    yield encode_event("messageStart", b'{"role":"assistant"}')
    for delta in reply.deltas():
        payload = {"contentBlockIndex": 0, "delta": {"text": delta}}
        yield encode_event("contentBlockDelta", orjson.dumps(payload))
    yield encode_event("contentBlockStop", b'{"contentBlockIndex":0}')
    yield encode_event("messageStop", orjson.dumps({"stopReason": reply.stop_reason}))
    # Generated lazily so that latencyMs covers the events sent before it.
    metadata = {"usage": reply.usage(request), "metrics": {"latencyMs": _elapsed_ms(started)}}
    yield encode_event("metadata", orjson.dumps(metadata))


async def _send_stream(send: Send, request: FakeRequest, reply: Reply, started: float) -> None:
    # No content-length: the ASGI server sends chunked transfer-encoding, as Bedrock does.
    await send({"type": "http.response.start", "status": 200, "headers": _headers(_STREAM)})
    cut = reply.stream_error_after if reply.stream_error is not None else None
    for sent, frame in enumerate(_stream_events(request, reply, started)):
        if sent == cut:
            break
        if sent and reply.event_interval_s:
            await asyncio.sleep(reply.event_interval_s)
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    tail = b""
    if reply.stream_error is not None:
        tail = encode_exception(stream_member(reply.stream_error), reply.error_message)
    await send({"type": "http.response.body", "body": tail})


def _uvicorn_config(app: BedrockWireApp, keep_alive_s: int = 5) -> uvicorn.Config:
    # keep_alive_s: idle kept-alive connections are closed after it, as servers do (uvicorn's 5 s).
    return uvicorn.Config(
        app,
        timeout_keep_alive=keep_alive_s,
        lifespan="off",
        ws="none",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


class BedrockWireServer:
    """The fake, serving from a background thread; a context manager.

    Assign ``handler`` to re-script it between calls; ``calls`` lists every valid request.
    """

    def __init__(
        self, handler: Handler = echo_handler, *, host: str = "127.0.0.1", keep_alive_s: int = 5
    ) -> None:
        self._app = BedrockWireApp(handler)
        self.host = host
        self.keep_alive_s = keep_alive_s
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def handler(self) -> Handler:
        return self._app.handler

    @handler.setter
    def handler(self, handler: Handler) -> None:
        self._app.handler = handler

    @property
    def calls(self) -> list[FakeRequest]:
        return self._app.calls

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def counts(self) -> collections.Counter[str]:
        """Calls per model id."""
        return self._app.counts

    @property
    def app(self) -> BedrockWireApp:
        return self._app

    def reset(self, handler: Handler = echo_handler) -> None:
        """Forget recorded calls and re-script, so one running server can serve many tests."""
        self._app.handler = handler
        self._app.calls.clear()
        self._app.served = 0
        self._app.counts.clear()
        self._app.invocations.clear()
        self._app.invoke_error = None

    def start(self) -> None:
        sock = _bind(self.host, 0)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_uvicorn_config(self._app, self.keep_alive_s))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="bedrock-wire", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the fake Bedrock server did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> BedrockWireServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def bedrock_wire() -> Iterator[BedrockWireServer]:
    """A running fake with ``echo_handler``; set ``.handler`` to script it."""
    with BedrockWireServer() as server:
        yield server


def bench_handler(latency_s: float, chunks: int | None, interval_s: float) -> Handler:
    """Echo with fixed latency, optionally split into exactly ``chunks`` stream deltas."""

    def handler(request: FakeRequest) -> Reply:
        text = request.last_user_text
        pieces = split_even(text, chunks) if chunks else None
        return Reply(text=text, chunks=pieces, latency_s=latency_s, event_interval_s=interval_s)

    return handler


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback Bedrock runtime wire server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=None, help="stream deltas per answer")
    parser.add_argument("--interval-ms", type=float, default=0.0, help="time between events")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="share throttled")
    parser.add_argument("--seed", type=int, default=0, help="seed of the throttling draws")
    parser.add_argument(
        "--throttle-model",
        action="append",
        default=[],
        help="throttle only this model id (repeatable; default: every model)",
    )
    parser.add_argument(
        "--down-model", action="append", default=[], help="a model id that always answers 503"
    )
    args = parser.parse_args(argv)
    if args.chunks is not None and args.chunks < 1:
        parser.error("--chunks must be at least 1")
    from tests.fakes.bedrock_faults import by_model, hard_down, seeded_faults

    handler = bench_handler(args.latency_ms / 1000, args.chunks, args.interval_ms / 1000)
    if args.throttle_rate:
        flaky = seeded_faults(args.throttle_rate, args.seed, then=handler)
        if args.throttle_model:
            flaky = by_model({m: flaky for m in args.throttle_model}, handler)
        handler = flaky
    if args.down_model:
        handler = by_model({m: hard_down() for m in args.down_model}, handler)
    sock = _bind(args.host, args.port)
    # Connections made from here on wait in the listen backlog until uvicorn accepts them.
    print(f"READY {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(_uvicorn_config(BedrockWireApp(handler, record=False))).run(sockets=[sock])


if __name__ == "__main__":
    main()
