"""The contract between the gateway's local provider and the local inference engine.

The engine is synchronous and thread-based (torch releases the GIL while it computes); the
gateway bridges its callbacks onto the event loop. Keeping the contract in plain dataclasses
lets the gateway import it without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from adapters_local.data.messages import ChatMessage, Role

__all__ = [
    "ChatMessage",
    "Emit",
    "EngineStats",
    "Failed",
    "Finished",
    "GenerationEvent",
    "GenerationRequest",
    "InferenceEngine",
    "PromptTooLong",
    "RequestError",
    "Role",
    "StopReason",
    "TextDelta",
]

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    max_new_tokens: int = 256
    temperature: float | None = None  # None or 0 means greedy
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    adapter: str | None = None  # None means the base model alone
    seed: int | None = None  # sampling seed for this row alone; None means unseeded


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finished:
    stop_reason: StopReason
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Failed:
    error: BaseException


class RequestError(ValueError):
    """The request cannot be served as given: a client error (the gateway answers 400).

    The message names the field at fault and never quotes the prompt; ``param`` is that field.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class PromptTooLong(RequestError):
    """The prompt does not fit the model's context; raised (as ``Failed``) before generation."""

    def __init__(self, prompt_tokens: int, context_length: int, *, at_least: bool = False) -> None:
        # at_least: only a prefix was counted (a huge prompt is not tokenized in full).
        size = f"at least {prompt_tokens}" if at_least else str(prompt_tokens)
        super().__init__(
            f"the prompt is {size} tokens; the model's context is {context_length}",
            param="messages",
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.at_least = at_least


GenerationEvent = TextDelta | Finished | Failed
Emit = Callable[[GenerationEvent], None]


@dataclass
class EngineStats:
    """Counters the engine keeps so batching can be observed (tests, /metrics).

    ``batches`` counts admissions (newcomers prefilled together), ``requests`` the rows admitted,
    ``batch_sizes`` the rows decoding together right after each admission, and ``joins`` the
    admissions into a batch that was already decoding (continuous batching at work).
    """

    batches: int = 0
    requests: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    joins: int = 0
    threads: int = 0  # torch CPU threads the engine decodes with (0: not chosen yet / GPU)


class InferenceEngine(Protocol):
    """What the gateway needs from a local model.

    ``submit`` returns at once; the engine calls ``emit`` from its worker thread with zero or
    more ``TextDelta`` then exactly one ``Finished`` or ``Failed``. The returned callable
    cancels the request (the engine then emits ``Finished`` or nothing further).
    """

    @property
    def base_name(self) -> str: ...

    @property
    def adapter_names(self) -> tuple[str, ...]: ...

    @property
    def stats(self) -> EngineStats: ...

    def submit(self, request: GenerationRequest, emit: Emit) -> Callable[[], None]: ...

    def close(self) -> None: ...
