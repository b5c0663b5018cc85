"""The controller's queue while it is stopped: with a resync, its start decides what is queued, and in what order."""

import asyncio

from shared.runtime.clock import ManualClock
from shared.runtime.controller import Controller, Result
from shared.runtime.workqueue import WorkQueue


async def test_a_stopped_controller_with_a_resync_queues_only_the_resync_in_its_order_then_what_comes():
    seen: list[str] = []
    done = asyncio.Event()

    async def reconcile(key: str) -> Result:
        seen.append(key)
        if len(seen) == 4:
            done.set()
        return Result.done()

    controller = Controller(
        "test", reconcile, WorkQueue("test", clock=ManualClock()), workers=1, resync=lambda: ["urgent", "a", "b"]
    )
    controller.enqueue("b")  # a standby sees events too; they would stand ahead of the resync's order
    controller.enqueue("a")
    assert len(controller.queue) == 0
    controller.start()
    controller.enqueue("c")
    await asyncio.wait_for(done.wait(), 5)
    await controller.stop()
    assert seen == ["urgent", "a", "b", "c"]


async def test_without_a_resync_keys_queued_before_the_start_are_kept():
    seen: list[str] = []
    done = asyncio.Event()

    async def reconcile(key: str) -> Result:
        seen.append(key)
        done.set()
        return Result.done()

    controller = Controller("test", reconcile, WorkQueue("test", clock=ManualClock()), workers=1)
    controller.enqueue("a")
    controller.start()
    await asyncio.wait_for(done.wait(), 5)
    await controller.stop()
    assert seen == ["a"]


async def test_an_urgent_key_is_reconciled_before_the_keys_queued_ahead_of_it():
    seen: list[str] = []
    holding, release, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def reconcile(key: str) -> Result:
        if key == "first":
            holding.set()
            await release.wait()  # hold the only worker while the others queue up
        seen.append(key)
        if len(seen) == 4:
            done.set()
        return Result.done()

    controller = Controller("test", reconcile, WorkQueue("test", clock=ManualClock()), workers=1)
    controller.start()
    controller.enqueue("first")
    await asyncio.wait_for(holding.wait(), 5)
    controller.enqueue("new-1")
    controller.enqueue("new-2")
    controller.enqueue("progress", urgent=True)
    release.set()
    await asyncio.wait_for(done.wait(), 5)
    await controller.stop()
    assert seen == ["first", "progress", "new-1", "new-2"]
