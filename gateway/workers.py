"""``strata serve --workers N``: a pre-fork supervisor over N gateway processes on one port.

The supervisor binds N listening sockets with ``SO_REUSEPORT`` on the port, builds the app
once (config checked, dev key made), and forks one worker per socket. Each worker runs its own
lifespan (providers, clients, ledger segment, event loop) and serves only its socket; the kernel
spreads new connections over the sockets. Why this shape:

- one socket per worker, not one shared socket: with a shared socket every worker's event loop
  wakes for each connection and asyncio accepts up to the whole backlog in one go, so a burst of
  keep-alive connections (a benchmark, a connection pool warming up) lands mostly on whichever
  worker woke first and stays there; ``SO_REUSEPORT`` hashes each connection to a socket;
- the supervisor binds, not the workers: a busy port fails before anything is forked, and the
  supervisor keeps every socket open, so a worker that dies leaves its queued connections in
  the kernel for the worker started in its place (not reset, as a closed socket's would be).

Workers share state only through the databases: PostgreSQL or ``$STRATA_HOME``'s SQLite (WAL
mode, every write a short ``BEGIN IMMEDIATE`` transaction with a busy timeout; the ledger is
idempotent by request id and each worker writes its own write-ahead segment) and Redis, which
more than one worker requires: without it rate limits and budgets are per process, and N
workers would give every key N times its limits. What stays per worker is listed in the README
("Several workers").

Signals: SIGTERM or SIGINT to the supervisor drains every worker (``gateway/drain.py``); a second
one cuts what is still in flight; past ``drain_s`` (plus a little for the workers' own exit) the
supervisor kills what is left. Workers run in process groups of their own, so a terminal's
Ctrl-C reaches the supervisor only, and a worker whose supervisor vanished drains by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from gateway.observability.peers import WorkerSlot
from gateway.settings import Settings

log = logging.getLogger("strata.workers")

_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
# A worker that dies sooner than this after its start is restarted after a growing delay.
_HEALTHY_S = 10.0
_MAX_DELAY_S = 30.0
# Beyond drain_s: a worker's own watchdog exits it at drain_s; this is for it to get there.
_KILL_SLACK_S = 5.0


def refusal(settings: Settings) -> str | None:
    """Why these settings cannot run several workers, or None."""
    if settings.workers > 1 and not settings.redis_url:
        return (
            f"{settings.workers} workers need STRATA_REDIS_URL: without Redis, rate limits and "
            f"budgets are counted per process, so each of the {settings.workers} workers would "
            "give every key its full limits. Set STRATA_REDIS_URL=redis://… or use one worker."
        )
    return None


def bind_group(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port`` sharing it through ``SO_REUSEPORT``.

    A plain bind first: another server on the port fails it, including another Strata's
    ``SO_REUSEPORT`` group, which this one would otherwise silently join and split traffic with.
    """
    from gateway.serving import bind

    bind(host, port).close()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others join the first one's
            sock.listen(2048)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    delay_s: float = 0.0
    restart_at: float | None = None
    exits: int = 0


class Supervisor:
    def __init__(self, app: FastAPI, settings: Settings, sockets: list[socket.socket]) -> None:
        self.app, self.settings, self.sockets = app, settings, sockets
        self.slots = [_Slot(i) for i in range(len(sockets))]
        # Where the workers publish their metrics for each other's /metrics (this run only).
        self.folder = Path(tempfile.mkdtemp(prefix="strata-workers-"))
        self.stopping = False
        self.kill_at = 0.0
        self.clean = True
        self.status = 0

    def run(self) -> int:
        """Supervise until every worker has exited after a signal; the exit status."""
        try:
            return self._supervise()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _supervise(self) -> int:
        if threading.active_count() > 1:
            log.warning("forking with %d threads running", threading.active_count())
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        host, port = self.sockets[0].getsockname()[:2]
        log.info("supervisor: %d workers on http://%s:%d", len(self.slots), host, port)
        for slot in self.slots:
            self._fork(slot)
        while True:
            info = signal.sigtimedwait(_SIGNALS, self._timeout())
            if info is not None and info.si_signo != signal.SIGCHLD:
                self._on_signal(signal.Signals(info.si_signo))
            self._reap()
            now = time.monotonic()
            if self.stopping:
                if not any(s.pid for s in self.slots):
                    log.info("supervisor: every worker has exited")
                    return self.status or (0 if self.clean else 1)
                if now >= self.kill_at:
                    self._kill_remaining()
                continue
            for slot in self.slots:
                if slot.restart_at is not None and now >= slot.restart_at:
                    self._fork(slot)

    def _timeout(self) -> float:
        pending = [s.restart_at for s in self.slots if s.restart_at is not None]
        if self.stopping:
            pending.append(self.kill_at)
        if not pending:
            return 1.0
        return max(0.01, min(1.0, min(pending) - time.monotonic()))

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stopping:
            log.warning("supervisor: %s again: workers cut the requests still in flight", sig.name)
            self._send(signal.SIGINT)
            return
        self.stopping = True
        self.kill_at = time.monotonic() + self.settings.drain_s + _KILL_SLACK_S
        log.info(
            "supervisor: %s: draining %d workers (bound %.0f s)",
            sig.name,
            sum(1 for s in self.slots if s.pid),
            self.settings.drain_s,
        )
        for slot in self.slots:
            slot.restart_at = None
        # The workers' copies keep the sockets open while they drain; ours must not outlive
        # them, or the kernel would keep queueing connections nobody accepts.
        for sock in self.sockets:
            sock.close()
        self._send(signal.SIGTERM)

    def _send(self, sig: signal.Signals) -> None:
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, sig)

    def _kill_remaining(self) -> None:
        for slot in self.slots:
            if slot.pid:
                log.error(
                    "supervisor: worker %d (pid %d) still running past the drain bound: killed",
                    slot.index,
                    slot.pid,
                )
                self.clean = False
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
        self.kill_at = time.monotonic() + 60  # reaped on the next turns

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is not None:
                self._exited(slot, status)

    def _exited(self, slot: _Slot, status: int) -> None:
        slot.pid = 0
        lived = time.monotonic() - slot.started
        how = _describe(status)
        code = os.waitstatus_to_exitcode(status)
        if code == STARTUP_FAILURE and slot.exits == 0 and not self.stopping:
            # Its lifespan could not open (a database, a provider): the others would fail the
            # same way, and one process would have exited here too, so stop rather than loop.
            log.error("supervisor: worker %d failed to start (%s); stopping", slot.index, how)
            self.status = STARTUP_FAILURE
            self._on_signal(signal.SIGTERM)
            return
        if self.stopping:
            if code != 0:
                self.clean = False
            log.info("supervisor: worker %d %s", slot.index, how)
            return
        slot.exits += 1
        slot.delay_s = 0.0 if lived >= _HEALTHY_S else min(_MAX_DELAY_S, max(0.5, slot.delay_s * 2))
        slot.restart_at = time.monotonic() + slot.delay_s
        log.error(
            "supervisor: worker %d %s after %.1f s; restarting it in %.1f s",
            slot.index,
            how,
            lived,
            slot.delay_s,
        )

    def _fork(self, slot: _Slot) -> None:
        slot.restart_at = None
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self.app.state.strata_worker = WorkerSlot(slot.index, self.folder)
            _worker(slot.index, self.app, self.settings, self.sockets, parent)
        slot.pid, slot.started = pid, time.monotonic()
        log.info("supervisor: worker %d started (pid %d)", slot.index, pid)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _worker(
    index: int, app: FastAPI, settings: Settings, sockets: list[socket.socket], parent: int
) -> None:
    """The forked child: serve ``sockets[index]`` until drained, then exit (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for i, sock in enumerate(sockets):
            if i != index:
                sock.close()
        fmt = f"%(asctime)s %(levelname)s [worker {index}] %(name)s: %(message)s"
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(fmt))
        from gateway.serving import run

        run(app, settings, sockets[index], parent_pid=parent)
        code = 0
    except SystemExit as exc:  # uvicorn's start-up failure
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        os._exit(code)
