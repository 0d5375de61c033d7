"""Logging set-up. Request bodies and keys are never logged; this filter is the backstop."""

from __future__ import annotations

import logging
import re
import traceback

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


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
