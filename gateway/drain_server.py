"""uvicorn's ``Server`` with Strata's drain (``gateway/drain.py`` says what and why).

uvicorn's own shutdown closes idle keep-alive connections at once and then waits a fixed time.
Two things change here: a request a client wrote just before the signal may still sit unread on
an "idle" connection, so idle connections get a short grace to show it before they are closed;
and the whole drain, flushes included, is held to one bound (``drain_s``) by a watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from gateway.drain import Drain

log = logging.getLogger("strata.drain")

# How long idle keep-alive connections may still deliver a request sent before the signal.
IDLE_GRACE_S = 0.5
_POLL_S = 0.05
# uvicorn's main loop wakes every 0.1 s to see ``should_exit`` and, every tenth time, refresh
# the Date header: 10 wake-ups a second of an idle gateway. This one wakes at each whole second
# (the Date header's resolution) and at once when ``should_exit`` is set.
_TICK_S = 1.0


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        drain: Drain,
        *,
        drain_s: float,
        drain_delay_s: float = 0.0,
        parent_pid: int | None = None,
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_s = drain_s
        self.drain_delay_s = min(drain_delay_s, drain_s)
        # Time kept at the end of the bound for the lifespan's flushes (ledger, CloudWatch).
        self.flush_reserve_s = min(5.0, drain_s / 4)
        self.parent_pid = parent_pid
        self._deadline: float | None = None
        self._watchdog: threading.Timer | None = None
        self.ticks = 0

    # Set from signal handlers, from on_tick and by embedders (tests run a server in a thread):
    # setting it wakes the main loop, which no longer polls it ten times a second.
    @property
    def should_exit(self) -> bool:
        return bool(self.__dict__.get("_should_exit", False))

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self.__dict__["_should_exit"] = value
        wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = self.__dict__.get("_wake")
        if value and wake is not None:
            loop, event = wake
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)

    async def main_loop(self) -> None:
        event = asyncio.Event()
        self.__dict__["_wake"] = (asyncio.get_running_loop(), event)
        try:
            # uvicorn's on_tick refreshes the Date header when the counter is a multiple of 10.
            while not await self.on_tick(0):
                self.ticks += 1
                delay = _TICK_S - time.time() % _TICK_S + 0.001
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), delay)
        finally:
            self.__dict__["_wake"] = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after its shutdown (the process then dies of it); a
        # drained worker exits 0 instead, so its supervisor can tell a drain from a crash.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        sigs = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
            if self._watchdog is not None:
                self._watchdog.cancel()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True  # a second signal: stop waiting for requests in flight
            return
        self.should_exit = True
        self._begin(signal.Signals(sig).name)

    def _begin(self, why: str) -> None:
        if self._deadline is not None:
            return
        self.drain.begin()
        self._deadline = time.monotonic() + self.drain_s
        self._watchdog = threading.Timer(self.drain_s, self._overdue)
        self._watchdog.daemon = True
        self._watchdog.start()
        log.info(
            "%s: draining (bound %.0f s): /readyz answers 503, %d request(s) in flight",
            why,
            self.drain_s,
            self.drain.inflight,
        )

    def _overdue(self) -> None:
        # The lifespan's flushes outlived the bound (a database or CloudWatch not answering).
        # Unwritten ledger records stay in this process's write-ahead segment and are replayed
        # by the next process to start on this STRATA_HOME.
        log.error(
            "drain bound of %.0f s reached during shutdown: exiting with %d request(s) cut",
            self.drain_s,
            self.drain.inflight,
        )
        logging.shutdown()
        os._exit(1)

    async def on_tick(self, counter: int) -> bool:
        if self.parent_pid is not None and not self.should_exit and os.getppid() != self.parent_pid:
            log.warning("the supervisor (pid %d) is gone", self.parent_pid)
            self.should_exit = True
            self._begin("supervisor gone")
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._begin("exit")
        assert self._deadline is not None
        deadline = self._deadline
        # 1. Still accepting while load balancers see /readyz fail.
        await self._wait(lambda: True, time.monotonic() + self.drain_delay_s)
        # 2. Stop accepting new connections.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        if state.connections:
            await self._wait(lambda: True, time.monotonic() + IDLE_GRACE_S)
        # 3. Idle connections close now, busy ones after their response (uvicorn's shutdown).
        for connection in list(state.connections):
            connection.shutdown()

        def busy() -> bool:
            return bool(state.connections or state.tasks)

        await self._wait(busy, deadline - self.flush_reserve_s)
        if busy():
            log.error(
                "drain bound: cutting %d request(s) still in flight after %.1f s",
                self.drain.inflight,
                self.drain_s - (deadline - time.monotonic()),
            )
            self.drain.cut()
            for task in list(state.tasks):
                task.cancel("drain bound reached")
            for connection in list(state.connections):
                connection.transport.close()
            await asyncio.sleep(0)  # let the cancelled calls start their settles
        else:
            log.info("drained: no request in flight; flushing")
        # 4. The lifespan: background settles, ledger, metrics and CloudWatch flushed.
        await self.lifespan.shutdown()
        # Done within the bound: the watchdog must not outlive the drain. A server run in a
        # thread (tests, embedding) never leaves capture_signals' main-thread path, and a
        # forgotten timer would os._exit the whole process drain_s later.
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def _wait(self, condition: Callable[[], bool], until: float) -> None:
        # Polled: the conditions are uvicorn's connection and task sets, which signal nothing.
        while condition() and not self.force_exit and time.monotonic() < until:  # noqa: ASYNC110
            await asyncio.sleep(min(_POLL_S, max(0.0, until - time.monotonic())))
