"""``python:module:function``: a function of yours scores the answer.

It is called as ``function(prompt, answer, expected)`` with the prompt as a chat (a list of
``{"role", "content"}``) and ``expected`` None when there is none, and returns a number in
[0, 1] or a bool (it may be ``async``). A plain function runs on the grader's own few threads,
so a slow or hung one holds up neither the event loop nor the threads the gateway's database
calls use; a call that outlives the grader's timeout keeps its thread until it returns.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway.experiments.graders.base import Grade, GraderError, Sample


def load_function(spec: str) -> Callable[..., Any]:
    """``module:function`` (``module.sub:function``) → the callable; ValueError saying why not."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"function: {spec!r} is not module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"function: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise ValueError(f"function: {module_name!r} has no function {attr!r}")
    return target  # type: ignore[no-any-return]


class PythonGrader:
    def __init__(self, name: str, function: Callable[..., Any], threads: int = 4) -> None:
        self.name = name
        self._function = function
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None

    async def grade(self, sample: Sample) -> Grade:
        args = (sample.prompt, sample.answer, sample.expected)
        if inspect.iscoroutinefunction(self._function):
            value = await self._function(*args)
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads, f"grader-{self.name}")
            run = functools.partial(self._function, *args)
            value = await asyncio.get_running_loop().run_in_executor(self._executor, run)
        if isinstance(value, bool):
            return Grade(float(value), "true" if value else "false")
        if not isinstance(value, int | float):
            raise GraderError(f"the function returned {type(value).__name__}, not a number")
        return Grade(float(value), "function")
