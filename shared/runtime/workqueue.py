"""A rate-limiting, delaying work queue with client-go's semantics, for asyncio.

- A queued key is held once, however often it is added (the *dirty* set).
- A key is never handed to two workers at once (the *processing* set); a key added while it is being processed is
  handed out again after `done()`.
- `add_after` / `add_at` go through heaps of deadlines with one timer armed for the earliest: no task per key,
  no polling. Re-adding a waiting key keeps the earliest deadline. A key is never handed out before its deadline.
- A relative delay (`add_after`: retries, requeues) runs on the monotonic clock, so a wall-clock step (NTP, a VM
  resumed) neither stretches a 0.5 s retry to a minute nor fires it early; only an absolute time (`add_at`, for
  `blockedUntil`) follows the wall clock, since that is what it names.
- `add_rate_limited` waits per key: 5 ms doubling to 1000 s, until `forget`.
- `add(key, urgent=True)` queues a key ahead of the others (a queued key moves up), for work that must not wait
  behind a burst: progress of something already running before new work (controller-runtime's priority queue, in
  two levels).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from shared.runtime.clock import Clock, RealClock, Timer
from shared.runtime.metrics import RuntimeMetrics


class ShutDown(Exception):
    """The queue is shut down and empty: the worker should stop."""


class ExponentialRateLimiter:
    """Per-key exponential delay, as client-go's ItemExponentialFailureRateLimiter."""

    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self.base = base
        self.maximum = maximum
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures > 60:  # 2**60 * base is far beyond any maximum; avoid float overflow
            return self.maximum
        return float(min(self.base * 2**failures, self.maximum))

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class WorkQueue:
    def __init__(
        self,
        name: str,
        *,
        clock: Clock | None = None,
        metrics: RuntimeMetrics | None = None,
        rate_limiter: ExponentialRateLimiter | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or RealClock()
        self._limiter = rate_limiter or ExponentialRateLimiter()
        self._queue: deque[str] = deque()
        self._urgent: deque[str] = deque()  # handed out before `_queue`
        self._urgent_keys: set[str] = set()  # keys in `_urgent`, or to go there when their processing is done
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._drained = asyncio.Event()
        # Delaying part: key -> its one deadline, on the monotonic clock (a float) or the wall clock (a datetime),
        # and a heap per clock that may hold stale entries.
        self._waiting: dict[str, float | datetime] = {}
        self._monotonic_heap: list[tuple[float, int, str]] = []
        self._wall_heap: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._timer: Timer | None = None
        self._timer_due: float | None = None  # monotonic time the armed timer fires
        # Bookkeeping for metrics: when a key was queued and when its processing started (monotonic).
        self._queued_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}
        self._metrics = metrics
        if metrics is not None:
            metrics.workqueue_unfinished_work.labels(name).set_function(self.unfinished_work_seconds)
            metrics.workqueue_longest_running_processor.labels(name).set_function(self.longest_running_seconds)

    # -- the basic queue ------------------------------------------------------------------------------------
    def add(self, key: str, *, urgent: bool = False) -> None:
        """Queue `key` unless it is already queued; if it is being processed, queue it again after `done`.

        `urgent` keys are handed out before all others, in the order they were added; an urgent add of a key
        already queued moves it up."""
        if self._shutting_down:
            return
        if key in self._dirty:
            if urgent and key not in self._urgent_keys:
                self._urgent_keys.add(key)
                if key not in self._processing:
                    self._queue.remove(key)
                    self._urgent.append(key)
            return
        if self._metrics is not None:
            self._metrics.workqueue_adds.labels(self.name).inc()
        self._dirty.add(key)
        if urgent:
            self._urgent_keys.add(key)
        if key in self._processing:
            return
        self._push(key)

    def _push(self, key: str) -> None:
        (self._urgent if key in self._urgent_keys else self._queue).append(key)
        self._queued_at[key] = self._clock.monotonic()
        self._update_depth()
        self._wake_one()

    async def get(self) -> str:
        """The next key to process; it stays in the processing set until `done(key)`. Raises ShutDown."""
        while not (self._urgent or self._queue):
            if self._shutting_down:
                raise ShutDown()
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                # Pass the wake-up on if this getter was chosen just before being cancelled.
                if getter.done() and not getter.cancelled() and (self._urgent or self._queue):
                    self._wake_one()
                raise
        if self._urgent:
            key = self._urgent.popleft()
            self._urgent_keys.discard(key)
        else:
            key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        now = self._clock.monotonic()
        if self._metrics is not None:
            queued_at = self._queued_at.pop(key, now)
            self._metrics.workqueue_queue_duration.labels(self.name).observe(now - queued_at)
        else:
            self._queued_at.pop(key, None)
        self._started_at[key] = now
        self._update_depth()
        return key

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def done(self, key: str) -> None:
        """Mark `key` processed; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if self._metrics is not None and started is not None:
            self._metrics.workqueue_work_duration.labels(self.name).observe(self._clock.monotonic() - started)
        if key in self._dirty:
            self._push(key)
        elif self._shutting_down and not self._processing:
            self._drained.set()

    def __len__(self) -> int:
        return len(self._urgent) + len(self._queue)

    def is_processing(self, key: str) -> bool:
        return key in self._processing

    # -- the delaying part ----------------------------------------------------------------------------------
    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` after `delay` seconds of monotonic time (at once if delay <= 0)."""
        self._add_deadline(key, self._clock.monotonic() + delay)

    def add_at(self, key: str, when: datetime) -> None:
        """Queue `key` when the wall clock reaches `when`, never earlier. The earliest of several deadlines wins."""
        self._add_deadline(key, when)

    def _remaining(self, deadline: float | datetime) -> float:
        """Seconds from now until `deadline`, on the clock it belongs to."""
        if isinstance(deadline, datetime):
            return (deadline - self._clock.now()).total_seconds()
        return deadline - self._clock.monotonic()

    def _add_deadline(self, key: str, deadline: float | datetime) -> None:
        if self._shutting_down:
            return
        remaining = self._remaining(deadline)
        if remaining <= 0:
            self.add(key)
            return
        current = self._waiting.get(key)
        if current is not None and self._remaining(current) <= remaining:
            return
        self._waiting[key] = deadline
        if isinstance(deadline, datetime):
            heapq.heappush(self._wall_heap, (deadline, next(self._seq), key))
        else:
            heapq.heappush(self._monotonic_heap, (deadline, next(self._seq), key))
        due = self._clock.monotonic() + remaining
        if self._timer_due is None or due < self._timer_due:
            self._arm(remaining)

    def _arm(self, remaining: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = self._clock.monotonic() + remaining
        self._timer = self._clock.call_later(remaining, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_due = None
        next_remaining = min(self._release_due(self._monotonic_heap), self._release_due(self._wall_heap))
        if next_remaining != float("inf"):
            # Not due yet on its own clock (the loop's timer may fire a hair early, the wall clock may have stepped
            # back): re-arm, never hand out early.
            self._arm(next_remaining)

    def _release_due(self, heap: list[tuple[Any, int, str]]) -> float:
        """Queue every key of `heap` whose deadline has come; the seconds until the next one (inf if none)."""
        while heap:
            deadline, _, key = heap[0]
            if self._waiting.get(key) != deadline:
                heapq.heappop(heap)  # stale: superseded by an earlier deadline or already fired
                continue
            remaining = self._remaining(deadline)
            if remaining > 0:
                return remaining
            heapq.heappop(heap)
            del self._waiting[key]
            self.add(key)
        return float("inf")

    def waiting(self) -> int:
        """Keys waiting for a deadline."""
        return len(self._waiting)

    def deadline_of(self, key: str) -> datetime | None:
        """When `key` is due, on the wall clock (a relative delay's deadline as the wall clock reads now)."""
        deadline = self._waiting.get(key)
        if deadline is None or isinstance(deadline, datetime):
            return deadline
        return self._clock.now() + timedelta(seconds=deadline - self._clock.monotonic())

    # -- rate limiting --------------------------------------------------------------------------------------
    def add_rate_limited(self, key: str) -> None:
        """Queue `key` after its per-key backoff (5 ms doubling to 1000 s until `forget`)."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.workqueue_retries.labels(self.name).inc()
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: str) -> None:
        """Reset `key`'s backoff after a success."""
        self._limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self._limiter.num_requeues(key)

    # -- shutdown -------------------------------------------------------------------------------------------
    def shut_down(self) -> None:
        """Stop accepting keys and timers; workers get ShutDown once the queue is empty."""
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_due = None
        self._waiting.clear()
        self._monotonic_heap.clear()
        self._wall_heap.clear()
        if not self._processing:
            self._drained.set()
        for getter in self._getters:
            if not getter.done():
                getter.set_result(None)
        self._getters.clear()

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until every key being processed is done."""
        self.shut_down()
        await self._drained.wait()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # -- metrics --------------------------------------------------------------------------------------------
    def _update_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.workqueue_depth.labels(self.name).set(len(self))

    def unfinished_work_seconds(self) -> float:
        now = self._clock.monotonic()
        return sum(now - started for started in self._started_at.values())

    def longest_running_seconds(self) -> float:
        if not self._started_at:
            return 0.0
        return self._clock.monotonic() - min(self._started_at.values())
