"""The access log: one JSON line per call, built from the ``CallRecord`` (which holds no prompt
text and no key, only the key's tenant), to a file or the ``strata.access`` logger."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.logs import direct_writer
from gateway.observability.config import AccessLogSection
from gateway.observability.record import CallRecord
from gateway.pipeline.call import Call

log = logging.getLogger("strata.access")


def line(rec: CallRecord) -> bytes:
    doc: dict[str, Any] = {
        "ts": round(rec.wall_time, 3),
        "request_id": rec.request_id,
        "tenant": rec.tenant,
        "surface": rec.surface,
        "stream": rec.stream,
        "alias": rec.alias or None,
        "target": rec.target or None,
        "variant": rec.variant or None,
        "status": rec.status,
        "error_class": rec.error_class,
        "attempts": rec.attempts,
        "cache": rec.cache,
        "latency_ms": round(rec.latency_s * 1000, 2),
        "upstream_ms": round(rec.upstream_s * 1000, 2),
        "overhead_ms": round(rec.overhead_s * 1000, 3),
        "ttft_ms": None if rec.ttft_s is None else round(rec.ttft_s * 1000, 2),
        "input_tokens": rec.tokens[0],
        "output_tokens": rec.tokens[1],
        "cache_read_tokens": rec.tokens[2],
        "cache_write_tokens": rec.tokens[3],
        "cost_usd": None if rec.cost_pusd is None else rec.cost_pusd / 1e12,
        "finish_reason": rec.finish_reason,
    }
    return orjson.dumps(doc)


class AccessLog(AbstractContextManager["AccessLog"]):
    """A settle sink. With ``path``, lines are appended to that file (line-buffered, so a
    crash loses at most the line being written); otherwise they go to the logger at ``level``."""

    def __init__(self, section: AccessLogSection) -> None:
        self._level = logging.getLevelName(section.level)
        self._file: IO[bytes] | None = None
        if section.path is not None:
            Path(section.path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(section.path, "ab", buffering=0)  # noqa: SIM115 (closed by __exit__)

    def __call__(self, call: Call, rec: CallRecord) -> None:
        if self._file is not None:
            self._file.write(line(rec) + b"\n")
        elif log.isEnabledFor(self._level):
            write = direct_writer(log, self._level)
            if write is None:
                log.log(self._level, "%s", line(rec).decode())
            else:
                write(line(rec).decode())

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
