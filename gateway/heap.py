"""The garbage collector after start-up: the heap the gateway starts with (FastAPI, pydantic's
schemas, botocore's service model, the config) lives as long as the process, yet every full
collection walked all of it. At saturation that was a ~100-370 ms stall of the event loop
every few seconds, which is where the p99 tail came from (bench/README.md, "The saturation
tail"). ``freeze_startup_heap`` moves everything alive at the end of start-up into the
permanent generation, so later collections only walk what requests create. A local model loads
after start-up (in the background, or on first use), so the local provider calls it again once
a model has loaded. ``thaw`` (at shutdown) hands it all back, so a process that starts many apps
(the tests) does not keep them."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("strata.heap")


def freeze_startup_heap() -> int:
    """Freeze what the start-up left; returns the number of objects frozen. No collection
    first: it would cost every app start (tests start hundreds) a full walk, to free a little
    start-up garbage that the thaw at shutdown hands back anyway."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze %d start-up objects out of the garbage collector's way", frozen)
    return frozen


def thaw_startup_heap() -> None:
    gc.unfreeze()
