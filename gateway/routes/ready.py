"""Run an awaitable as far as it goes without waiting, and tell whether it finished.

The streaming response uses this to take every frame the upstream has already delivered (one
upstream read holds several events) and send them in one write, instead of one ``send`` and one
socket write per event: ``Step(stream.__anext__())`` either is ``done`` at once or is suspended
on a future, and ``await step`` then resumes it in the awaiting task, as a plain ``await`` of
the same coroutine would have. Nothing runs in another task, so timeouts, cancellation and
context variables behave exactly as with ``await``.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar, cast

_T = TypeVar("_T")


class Step(Generic[_T]):
    """``awaitable`` run synchronously up to its first suspension. An exception it raises before
    suspending (``StopAsyncIteration`` at an iterator's end) comes out of the constructor."""

    __slots__ = ("_coro", "_value", "_yielded", "done")

    def __init__(self, awaitable: Awaitable[_T]) -> None:
        self._coro = coro = awaitable.__await__()
        self.done = False
        self._value: _T | None = None
        self._yielded: Any = None
        try:
            self._yielded = coro.send(None)
        except StopIteration as stop:
            self.done = True
            self._value = stop.value

    @property
    def value(self) -> _T:
        """The result of a step that is ``done``."""
        if not self.done:
            raise RuntimeError("the step is suspended: await it")
        return cast(_T, self._value)

    def __await__(self) -> Generator[Any, Any, _T]:
        return self._resume(None)

    async def abandon(self, exc: BaseException) -> None:
        """Deliver ``exc`` to the suspended coroutine, as if it had arrived while it waited,
        and let it finish its own cleanup (which may await). What it raises then is dropped:
        the caller re-raises ``exc`` itself."""
        with contextlib.suppress(BaseException):
            await _thrown(self, exc)

    def _resume(self, exc: BaseException | None) -> Generator[Any, Any, _T]:
        # `yield from self._coro` for a coroutine that has already yielded once: what it
        # yields (the future it waits on) goes to the task; what the task sends or throws
        # goes back into it.
        if self.done:
            return cast(_T, self._value)
        coro = self._coro
        try:
            pending = self._yielded if exc is None else coro.throw(exc)
            while True:
                try:
                    sent = yield pending
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as error:  # passed on, as await does
                    pending = coro.throw(error)
                else:
                    pending = coro.send(sent)
        except StopIteration as stop:
            self.done, self._value = True, stop.value
            return cast(_T, stop.value)


@types.coroutine
def _thrown(step: Step[_T], exc: BaseException) -> Generator[Any, Any, _T]:
    return (yield from step._resume(exc))
