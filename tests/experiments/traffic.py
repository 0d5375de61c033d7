"""Steady background traffic on an alias across gateway URLs, for ramp and replica tests:
each answer's arm and replica are kept, in order."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from types import TracebackType

import httpx


@dataclass
class Served:
    url: str
    arm: str
    target: str


@dataclass
class Traffic:
    urls: list[str]
    key: str
    alias: str
    workers: int = 8
    served: list[Served] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(self.workers)]

    def _run(self, worker: int) -> None:
        body = {"model": self.alias, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=60) as client:
            for url in itertools.islice(itertools.cycle(self.urls), worker, None):
                if self._stop.is_set():
                    return
                try:
                    r = client.post(url + "/v1/chat/completions", json=body, headers=headers)
                except httpx.TransportError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    if r.status_code == 200:
                        arm = r.headers.get("x-strata-variant", "")
                        self.served.append(Served(url, arm, r.headers["x-strata-target"]))
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")

    def since(self, index: int) -> list[Served]:
        with self._lock:
            return self.served[index:]

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
