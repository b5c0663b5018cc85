"""Start-up of a controller process, before any of its heavy modules is imported."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the block runs (issue 14: start-up CPU).

    A controller's imports make some 90 000 objects that live as long as the process (pydantic schemas,
    kubernetes-asyncio's models, aiohttp); the collector would walk them again and again while they are made (about
    20 ms, 4 % of the import CPU), and there is no garbage among them to find. run_controller_process freezes them
    once settings and logging are loaded."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
