"""The log redaction backstop: a substring pre-check (issue 17: the case-insensitive regex alone
cost ~0.1 ms per access-log line) must redact exactly what the regex does."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from gateway import logs
from gateway.logs import _SECRET, redact


def _regex_only(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "…", text)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer sk-strata-abcdefghijklmnop",
        "key SK-STRATA-ABCDefgh1234_- in the middle",
        "BEARER\ttoken-value",
        "\u017fk-strata-abcdefghij (a long s: IGNORECASE matches it)",
        "bearer",
        "sk-strata-ab",
        '{"tenant": "dev", "alias": "default", "status": 200}',
        "",
    ],
)
def test_redact_matches_the_regex_alone(text: str) -> None:
    assert redact(text) == _regex_only(text)


def test_a_key_is_cut_to_its_first_four_characters() -> None:
    assert redact("x sk-strata-abcdEFGH1234 y") == "x sk-strata-abcd… y"
    assert redact("Authorization: Bearer secret") == "Authorization: Bearer …"


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """``configure`` as the CLI calls it, writing to a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(logs, "_configured", None)
    logs.configure("INFO")
    # pytest's own capture handlers join the root for the test's call: the writer would rightly
    # step aside for them, so the test leaves the configured handler alone there.
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def _only_the_configured_handler() -> None:
    logging.getLogger().handlers[:] = [logs._configured]  # type: ignore[list-item]


def test_direct_writer_writes_the_handlers_own_line(configured: io.StringIO) -> None:
    _only_the_configured_handler()
    access = logging.getLogger("strata.access")
    message = '{"request_id": "r1", "note": "Bearer sk-strata-abcdefghijkl"}'
    access.info("%s", message)
    write = logs.direct_writer(access, logging.INFO)
    assert write is not None
    write(message)
    through_logging, direct = configured.getvalue().splitlines()
    # Same line but for the clock: "YYYY-MM-DD HH:MM:SS,mmm" then the rest, redacted alike.
    assert len(direct) == len(through_logging)
    assert direct[23:] == through_logging[23:]
    assert direct[19] == "," and direct[:19] == through_logging[:19]
    assert "abcdefghijkl" not in direct


def test_direct_writer_steps_aside_for_any_other_way_out(configured: io.StringIO) -> None:
    _only_the_configured_handler()
    access = logging.getLogger("strata.access")
    extra = logging.Handler()
    for logger in (logging.getLogger(), logging.getLogger("strata"), access):
        logger.addHandler(extra)  # e.g. pytest's capture, on the root
        try:
            assert logs.direct_writer(access, logging.INFO) is None
        finally:
            logger.removeHandler(extra)
    assert logs.direct_writer(access, logging.INFO) is not None
