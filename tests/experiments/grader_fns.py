"""Python graders the live-grading tests configure by name (``python:module:function``)."""

from __future__ import annotations

import threading

from gateway.experiments.graders.base import Chat

HANG_ENTERED = threading.Event()
HANG_RELEASE = threading.Event()


def boom(prompt: Chat, answer: str, expected: str | None) -> float:
    raise RuntimeError("this grader always fails")


def hang(prompt: Chat, answer: str, expected: str | None) -> float:
    HANG_ENTERED.set()
    HANG_RELEASE.wait(120)
    return 1.0
