"""Logging set-up. Request bodies and keys are never logged; this filter is the backstop."""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable
from typing import TextIO

_SECRET = re.compile(r"(sk-strata-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+|(Bearer\s+)\S+", re.IGNORECASE)


# What every match of _SECRET contains, case-folded: a plain substring test rules most lines
# out (an access-log line, say) at a fraction of the regex's cost. casefold() folds what the
# regex's IGNORECASE matches too (the long s, the Kelvin sign).
_MARKERS = ("sk-strata-", "bearer")


def redact(text: str) -> str:
    folded = text.casefold()
    if not any(marker in folded for marker in _MARKERS):
        return text
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "…", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def code_location(exc: BaseException) -> str:
    """Where ``exc`` was raised (the last frames' file, line and function), without its message
    or source lines: either can quote request data (pydantic's ``input_value``, an f-string
    holding the prompt), which logs must never carry."""
    frames = traceback.extract_tb(exc.__traceback__)
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-4:])


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_configured: logging.StreamHandler[TextIO] | None = None


def configure(level: str) -> None:
    global _configured
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _configured = handler


class _Stamp:
    """``logging.Formatter``'s default ``asctime`` (local time, ``,mmm``), the strftime part
    made once per second."""

    second = -1
    text = ""

    def __call__(self, now: float) -> str:
        second = int(now)
        if second != self.second:
            self.text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self.second = second
        return f"{self.text},{int((now - second) * 1000):03d}"


_stamp = _Stamp()


def direct_writer(logger: logging.Logger, level: int) -> Callable[[str], None] | None:
    """A writer for one message of ``logger`` at ``level`` that skips the logging machinery
    (record, caller lookup, formatter: ~40 µs a line), or None unless the message's only way
    out is the handler ``configure`` installed (any other handler, filter or propagation
    change, such as pytest's capture, takes the ordinary path). It writes the same line the
    handler would, redacted as its filter would."""
    handler = _configured
    if handler is None or handler.level > level:
        return None
    node: logging.Logger | None = logger
    while node is not None and node.parent is not None:
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    if node is None or node.handlers != [handler] or node.filters:
        return None
    prefix = f" {logging.getLevelName(level)} {logger.name}: "

    def write(message: str) -> None:
        text = _stamp(time.time()) + prefix + redact(message) + handler.terminator
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        except (OSError, ValueError):  # a closed stream: logging, too, drops the line
            pass
        finally:
            handler.release()

    return write
