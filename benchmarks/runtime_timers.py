"""Timers: 5 000 keys added with `add_at` at deadlines spread over 20 s, side by side with two other designs.

- heap_queue:     our WorkQueue (one heap, one armed timer).
- task_per_key:   one asyncio task sleeping per key (what kopf does for its timers).
- polling_100ms:  a loop that checks every key every 100 ms.

Reported per design: lateness p50/p99/max and how many fired early (targets: p99 < 20 ms, never early), and the CPU
seconds the process used while 5 000 timers waited 30 s with nothing due (target < 0.3 s: no polling).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.runtime.workqueue import WorkQueue

KEYS = 5000
SPREAD = 20.0
IDLE = 30.0
LEAD = 0.5  # the first deadline lies this far ahead, so adding all keys never delays the first one

Scheduler = Callable[[dict[str, datetime], list[float], int], Awaitable[Callable[[], Awaitable[None]]]]


def _deadlines(count: int, start: float, spread: float) -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {f"key-{i}": now + timedelta(seconds=start + random.random() * spread) for i in range(count)}


async def _heap_queue(
    deadlines: dict[str, datetime], lateness: list[float], expected: int
) -> Callable[[], Awaitable[None]]:
    queue = WorkQueue("benchmark")
    for key, when in deadlines.items():
        queue.add_at(key, when)

    async def consume() -> None:
        while len(lateness) < expected:
            key = await queue.get()
            lateness.append((datetime.now(UTC) - deadlines[key]).total_seconds())
            queue.done(key)

    task = asyncio.create_task(consume())

    async def stop() -> None:
        task.cancel()
        queue.shut_down()

    return stop


async def _task_per_key(
    deadlines: dict[str, datetime], lateness: list[float], expected: int
) -> Callable[[], Awaitable[None]]:
    async def wait(key: str, when: datetime) -> None:
        await asyncio.sleep((when - datetime.now(UTC)).total_seconds())
        lateness.append((datetime.now(UTC) - when).total_seconds())

    tasks = [asyncio.create_task(wait(key, when)) for key, when in deadlines.items()]

    async def stop() -> None:
        for task in tasks:
            task.cancel()

    return stop


async def _polling(
    deadlines: dict[str, datetime], lateness: list[float], expected: int
) -> Callable[[], Awaitable[None]]:
    pending = dict(deadlines)

    async def poll() -> None:
        while True:
            now = datetime.now(UTC)
            due = [k for k, when in pending.items() if when <= now]
            lateness.extend((now - pending.pop(key)).total_seconds() for key in due)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(poll())

    async def stop() -> None:
        task.cancel()

    return stop


async def _measure(schedule: Scheduler, keys: int, spread: float, idle: float) -> dict[str, Any]:
    lateness: list[float] = []
    stop = await schedule(_deadlines(keys, LEAD, spread), lateness, keys)
    await asyncio.sleep(LEAD + spread + 1)  # every deadline has passed by then; the designs are judged on lateness
    await stop()
    ordered = sorted(lateness)

    idle_stop = await schedule(_deadlines(keys, idle + 60, spread), [], keys)
    cpu_before = time.process_time()
    await asyncio.sleep(idle)
    idle_cpu = time.process_time() - cpu_before
    await idle_stop()
    return {
        "fired": len(ordered),
        "early": sum(1 for value in ordered if value < 0),
        "lateness_p50_ms": round(statistics.median(ordered) * 1000, 3) if ordered else None,
        "lateness_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3) if ordered else None,
        "lateness_max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
        "idle_cpu_seconds": round(idle_cpu, 4),
    }


async def run(keys: int = KEYS, spread: float = SPREAD, idle: float = IDLE) -> dict[str, Any]:
    designs = {"heap_queue": _heap_queue, "task_per_key": _task_per_key, "polling_100ms": _polling}
    results = {name: await _measure(schedule, keys, spread, idle) for name, schedule in designs.items()}
    ours = results["heap_queue"]
    return {
        "keys": keys,
        "spread_seconds": spread,
        "idle_seconds": idle,
        "designs": results,
        "targets": {
            "p99_under_20ms": (ours["lateness_p99_ms"] or 1e9) < 20,
            "never_early": ours["early"] == 0,
            "idle_cpu_under_0.3s": ours["idle_cpu_seconds"] < 0.3,
        },
        "ratios": {
            "p99_lateness_polling_vs_heap": round(
                (results["polling_100ms"]["lateness_p99_ms"] or 0) / max(ours["lateness_p99_ms"] or 1e-3, 1e-3), 1
            ),
        },
    }
