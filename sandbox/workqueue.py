"""A minimal deduplicating work queue for the sandbox's built-in controllers.

Controllers are told about changes synchronously while a write commits; they must not write from there. They
add keys here instead, and the queue processes them on the next turn of the event loop, each key once however
often it was added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)


class WorkQueue(Generic[K]):
    def __init__(self, name: str, process: Callable[[K], None]) -> None:
        self.name = name
        self._process = process
        self._pending: dict[K, None] = {}
        self._scheduled = False

    def add(self, key: K) -> None:
        self._pending[key] = None
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for key in pending:
            try:
                self._process(key)
            except Exception:
                log.exception("sandbox.controller.failed controller=%s key=%s", self.name, key)
