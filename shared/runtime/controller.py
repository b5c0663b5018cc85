"""The reconcile loop: N workers take keys from a work queue and call a reconcile function.

A reconcile says what should happen next (controller-runtime's `reconcile.Result`): nothing, requeue after a delay
or at a time, or it raises and the key is retried with the queue's per-key backoff. An exception is logged with the
key and retried; it never ends the process.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog

from shared.runtime.client import WRITE_FENCE, ApiError
from shared.runtime.clock import Clock, RealClock
from shared.runtime.metrics import RuntimeMetrics
from shared.runtime.workqueue import ShutDown, WorkQueue

log = structlog.get_logger("kubernaut.controller")


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile wants next. `Result()` means done until something changes."""

    requeue_after: float | None = None
    requeue_at: datetime | None = None

    @classmethod
    def done(cls) -> Result:
        return cls()

    @classmethod
    def after(cls, seconds: float) -> Result:
        return cls(requeue_after=seconds)

    @classmethod
    def at(cls, when: datetime) -> Result:
        return cls(requeue_at=when)


Reconcile = Callable[[str], Awaitable[Result | None]]


class Controller:
    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        queue: WorkQueue,
        *,
        workers: int = 1,
        metrics: RuntimeMetrics | None = None,
        clock: Clock | None = None,
        resync: Callable[[], Iterable[str]] | None = None,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        """`fence`: whether the workers' writes may start now (the leadership they run under); None: always."""
        self.name = name
        self.queue = queue
        self._fence = fence
        self._reconcile = reconcile
        self._workers = workers
        self._metrics = metrics
        self._clock = clock or RealClock()
        self._resync = resync
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._ids = itertools.count(1)
        self.started_at: datetime | None = None
        """When the workers last started (for a leader: when it began leading)."""

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def enqueue(self, key: str, *, urgent: bool = False) -> None:
        """Queue `key` for the workers (`urgent`: ahead of the others). A stopped controller with a resync drops it:
        its start queues every key the resync names, in the resync's order, and adds meanwhile (a standby sees every
        event) would only stand ahead of that order."""
        if self._resync is not None and not self._tasks:
            return
        self.queue.add(key, urgent=urgent)

    def start(self) -> None:
        """Start the workers; first queue every key `resync` names (in its order), since keys seen while not
        running (or processed by an earlier leader) must all be looked at again."""
        if self._tasks:
            return
        self._stopping = False
        self.started_at = self._clock.now()
        for key in self._resync() if self._resync is not None else ():
            self.queue.add(key)
        for number in range(self._workers):
            task = asyncio.create_task(self._work(), name=f"{self.name}-worker-{number}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        log.info("controller.started", controller=self.name, workers=self._workers)

    def halt(self) -> None:
        """Cancel every worker now, without yielding to the event loop: when leadership is lost, no reconcile may
        start another request, not even in the loop iteration a `stop()` would need to begin. `stop()` then waits."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()

    async def stop(self, *, graceful: bool = True, timeout: float = 8.0) -> None:
        """Stop the workers. Graceful: let each finish the key in hand (up to `timeout`), then cancel the rest."""
        if not self._tasks:
            return
        self._stopping = True
        tasks = set(self._tasks)
        for task in tasks if not graceful else self._idle:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("controller.stopped", controller=self.name, graceful=graceful, cut_short=len(pending))

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        WRITE_FENCE.set(self._fence)  # this task's own context: every write of its reconciles is checked
        while not self._stopping:
            self._idle.add(task)
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            finally:
                self._idle.discard(task)
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        reconcile_id = f"{next(self._ids):x}"
        started = self._clock.monotonic()
        outcome = "success"
        with structlog.contextvars.bound_contextvars(controller=self.name, key=key, reconcile_id=reconcile_id):
            try:
                result = await self._reconcile(key) or Result()
            except ApiError as error:
                outcome = "error"
                level = "info" if error.conflict else "warning"
                getattr(log, level)(
                    "reconcile.api_error", status=error.status, reason=error.reason, error=error.message
                )
                self.queue.add_rate_limited(key)
            except Exception:
                outcome = "error"
                log.exception("reconcile.failed")
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if result.requeue_at is not None:
                    outcome = "requeue"
                    self.queue.add_at(key, result.requeue_at)
                elif result.requeue_after is not None:
                    outcome = "requeue"
                    self.queue.add_after(key, result.requeue_after)
            finally:
                if self._metrics is not None:
                    self._metrics.reconcile_total.labels(outcome).inc()
                    self._metrics.reconcile_duration.observe(self._clock.monotonic() - started)
