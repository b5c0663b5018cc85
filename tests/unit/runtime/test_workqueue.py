"""Work queue rules (client-go semantics) and timers, with a manual clock: no sleeping."""

import asyncio
import itertools
from datetime import timedelta

import pytest

from shared.runtime.clock import ManualClock
from shared.runtime.metrics import RuntimeMetrics
from shared.runtime.workqueue import ExponentialRateLimiter, ShutDown, WorkQueue


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def queue(clock):
    return WorkQueue("test", clock=clock, metrics=RuntimeMetrics("test_"))


def drain(queue):
    """Every key currently queued, in order, each marked done."""
    keys = []
    while len(queue):
        key = queue._queue[0]
        keys.append(key)
        queue._queue.popleft()
        queue._dirty.discard(key)
    return keys


async def test_a_key_added_twice_is_queued_once(queue):
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"


async def test_a_key_being_processed_is_not_handed_out_again_until_done(queue):
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0, "a key being processed must not be queued beside itself"
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_a_key_not_re_added_during_processing_is_not_requeued_by_done(queue):
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_get_waits_for_an_add(queue):
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_two_workers_never_get_the_same_key(queue):
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")
    queue.add("a")
    await asyncio.sleep(0)
    assert first.done() != second.done()
    queue.add("b")
    keys = {await first, await second}
    assert keys == {"a", "b"}


async def test_a_cancelled_getter_does_not_swallow_a_key(queue):
    cancelled = asyncio.create_task(queue.get())
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")
    cancelled.cancel()
    results = await asyncio.gather(cancelled, return_exceptions=True)
    got = results[0] if not isinstance(results[0], BaseException) else await asyncio.wait_for(waiting, 1)
    assert got == "a"
    waiting.cancel()


async def test_add_after_hands_the_key_out_at_its_deadline_not_before(queue, clock):
    queue.add_after("a", 10)
    clock.advance(9.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert await queue.get() == "a"


async def test_add_at_uses_wall_time(queue, clock):
    queue.add_at("a", clock.now() + timedelta(seconds=5))
    clock.advance(4.9)
    assert len(queue) == 0
    clock.advance(0.1)
    assert len(queue) == 1


async def test_timers_fire_in_deadline_order_whatever_the_insertion_order(queue, clock):
    for key, delay in [("c", 30), ("a", 10), ("b", 20), ("d", 40)]:
        queue.add_after(key, delay)
    clock.advance(100)
    assert drain(queue) == ["a", "b", "c", "d"]


async def test_re_adding_a_waiting_key_keeps_the_earliest_deadline(queue, clock):
    queue.add_after("a", 10)
    queue.add_after("a", 20)
    clock.advance(10)
    assert drain(queue) == ["a"]
    queue.add_after("b", 20)
    queue.add_after("b", 5)
    clock.advance(5)
    assert drain(queue) == ["b"]
    clock.advance(100)
    assert drain(queue) == [], "a superseded deadline must not fire again"


async def test_one_timer_is_armed_however_many_keys_wait(queue, clock):
    for i in range(1000):
        queue.add_after(f"k{i}", 1000 - i)
    assert clock.pending_timers() == 1
    assert queue.waiting() == 1000
    clock.advance(1000)
    assert len(queue) == 1000
    assert clock.pending_timers() == 0


async def test_a_past_or_zero_deadline_adds_at_once(queue, clock):
    queue.add_after("a", 0)
    queue.add_at("b", clock.now() - timedelta(seconds=1))
    assert drain(queue) == ["a", "b"]


class EarlyOnceClock(ManualClock):
    """The first timer fires half a second early by the wall clock, as a loop timer may when clocks disagree."""

    early = 0.5

    def call_later(self, delay, callback):
        delay, self.early = delay - self.early, 0.0
        return super().call_later(delay, callback)


async def test_a_timer_that_fires_early_by_the_wall_clock_is_re_armed_not_honoured():
    clock = EarlyOnceClock()
    queue = WorkQueue("early", clock=clock)
    queue.add_after("a", 10)
    clock.advance(9.5)
    assert len(queue) == 0
    assert clock.pending_timers() == 1
    clock.advance(0.5)
    assert len(queue) == 1


async def test_a_waiting_key_fires_even_if_it_was_processed_meanwhile(queue, clock):
    queue.add_after("a", 10)
    queue.add("a")
    queue.done(await queue.get())
    clock.advance(10)
    assert drain(queue) == ["a"]


def test_rate_limiter_doubles_from_5ms_to_1000s_and_forgets():
    limiter = ExponentialRateLimiter()
    delays = [limiter.when("k") for _ in range(22)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert limiter.num_requeues("k") == 22
    assert limiter.when("other") == 0.005
    limiter.forget("k")
    assert limiter.when("k") == 0.005


def test_rate_limiter_never_overflows():
    limiter = ExponentialRateLimiter()
    for _ in range(5000):
        delay = limiter.when("k")
    assert delay == 1000.0


async def test_add_rate_limited_waits_per_key(queue, clock):
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")  # second failure: 10 ms, but the 5 ms deadline wins while waiting
    clock.advance(0.005)
    assert drain(queue) == ["a"]
    queue.forget("a")
    assert queue.num_requeues("a") == 0


async def test_shutdown_lets_queued_keys_out_then_raises(queue):
    queue.add("a")
    queue.shut_down()
    queue.add("b")
    assert await queue.get() == "a"
    with pytest.raises(ShutDown):
        await queue.get()


async def test_shutdown_wakes_waiting_workers(queue):
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shut_down()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(getter, 1)


async def test_shutdown_with_drain_waits_for_in_flight_work(queue, clock):
    queue.add("a")
    key = await queue.get()
    queue.add_after("later", 5)
    drained = asyncio.create_task(queue.shut_down_with_drain())
    await asyncio.sleep(0)
    assert not drained.done()
    assert clock.pending_timers() == 0, "shutdown cancels the timer"
    queue.done(key)
    await asyncio.wait_for(drained, 1)


async def test_metrics_follow_client_go_names(queue, clock):
    registry = queue._metrics.registry
    queue.add("a")
    queue.add("b")
    assert registry.get_sample_value("workqueue_depth", {"name": "test"}) == 2
    assert registry.get_sample_value("workqueue_adds_total", {"name": "test"}) == 2
    key = await queue.get()
    clock.advance(3)
    assert registry.get_sample_value("workqueue_unfinished_work_seconds", {"name": "test"}) == 3
    assert registry.get_sample_value("workqueue_longest_running_processor_seconds", {"name": "test"}) == 3
    queue.done(key)
    assert registry.get_sample_value("workqueue_work_duration_seconds_count", {"name": "test"}) == 1
    assert registry.get_sample_value("workqueue_queue_duration_seconds_count", {"name": "test"}) == 1
    queue.add_rate_limited("a")
    assert registry.get_sample_value("workqueue_retries_total", {"name": "test"}) == 1


async def test_urgent_keys_are_handed_out_first_in_the_order_they_came(queue):
    for key in ("a", "b"):
        queue.add(key)
    queue.add("x", urgent=True)
    queue.add("y", urgent=True)
    assert len(queue) == 4
    assert [await queue.get() for _ in range(4)] == ["x", "y", "a", "b"]


async def test_an_urgent_add_moves_a_queued_key_up_and_keeps_it_queued_once(queue):
    for key in ("a", "b", "c"):
        queue.add(key)
    queue.add("c", urgent=True)
    queue.add("c")
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["c", "a", "b"]


async def test_a_key_made_urgent_while_processed_comes_back_first(queue):
    queue.add("a")
    key = await queue.get()
    queue.add("b")
    queue.add("a", urgent=True)
    assert len(queue) == 1, "still never queued beside itself"
    queue.done(key)
    assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_urgency_ends_when_the_key_is_handed_out(queue):
    queue.add("a", urgent=True)
    queue.done(await queue.get())
    queue.add("b")
    queue.add("a")
    assert [await queue.get(), await queue.get()] == ["b", "a"]


async def test_a_relative_delay_ignores_a_wall_clock_step_back(queue, clock):
    """Issue 18.6: a -60 s step of the wall clock made a 0.5 s retry wait 60.5 s."""
    queue.add_after("retry", 0.5)
    queue.add_rate_limited("limited")  # 5 ms, the first retry of a failed reconcile
    clock.step_wall(-60)
    clock.advance(0.005)
    assert drain(queue) == ["limited"]
    clock.advance(0.495)
    assert drain(queue) == ["retry"]


async def test_a_relative_delay_ignores_a_wall_clock_step_forward(queue, clock):
    queue.add_after("retry", 30)
    clock.step_wall(60)
    clock.advance(29.9)
    assert drain(queue) == [], "a forward step must not fire a relative delay early"
    clock.advance(0.1)
    assert drain(queue) == ["retry"]


async def test_an_absolute_time_follows_the_wall_clock_across_a_step_back(queue, clock):
    """blockedUntil is a wall-clock time: after a -60 s step it is 60 s further away, and never handed out early."""
    queue.add_at("blocked", clock.now() + timedelta(seconds=10))
    queue.add_after("retry", 10)
    clock.step_wall(-60)
    clock.advance(10)
    assert drain(queue) == ["retry"]
    assert queue.waiting() == 1 and clock.pending_timers() == 1, "the absolute deadline is re-armed"
    clock.advance(59.9)
    assert drain(queue) == []
    clock.advance(0.1)
    assert drain(queue) == ["blocked"]


async def test_the_earliest_deadline_wins_across_clocks(queue, clock):
    queue.add_at("a", clock.now() + timedelta(seconds=20))
    queue.add_after("a", 5)
    queue.add_after("b", 5)
    queue.add_at("b", clock.now() + timedelta(seconds=2))
    clock.advance(2)
    assert drain(queue) == ["b"]
    clock.advance(3)
    assert drain(queue) == ["a"]
    clock.advance(100)
    assert drain(queue) == [], "a superseded deadline on the other clock must not fire again"
    assert queue.deadline_of("a") is None
