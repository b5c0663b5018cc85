"""Leader election on a Lease in the sandbox: one leader, release hands over at once, a crash after expiry."""

from __future__ import annotations

import asyncio
import contextlib
import time

from shared.apiresource import LEASES
from shared.runtime.client import KubeClient
from shared.runtime.leaderelection import LeaderElector
from shared.runtime.metrics import RuntimeMetrics
from tests.integration.helpers import eventually

TIMINGS = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.2}


def elector(kube: KubeClient, namespace: str, identity: str, log: list[str], metrics: RuntimeMetrics | None = None):
    return LeaderElector(
        kube,
        namespace=namespace,
        name="test-lease",
        identity=identity,
        metrics=metrics,
        on_started_leading=lambda: log.append(f"{identity} started"),
        on_stopped_leading=lambda: log.append(f"{identity} stopped"),
        **TIMINGS,
    )


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_exactly_one_candidate_leads_and_a_release_hands_over_at_once(kube: KubeClient, namespace: str):
    log: list[str] = []
    metrics = RuntimeMetrics("test_")
    a, b = elector(kube, namespace, "a", log, metrics), elector(kube, namespace, "b", log)
    task_a = asyncio.create_task(a.run())
    await eventually(lambda: a.is_leader, what="a to lead")
    task_b = asyncio.create_task(b.run())
    await asyncio.sleep(TIMINGS["retry_period"] * 3)
    assert a.is_leader and not b.is_leader
    assert metrics.registry.get_sample_value("test_leader_election_is_leader", {"lease": "test-lease"}) == 1
    lease = await kube.get(LEASES, namespace, "test-lease")
    assert lease["spec"]["holderIdentity"] == "a"

    await a.release()
    await stop(task_a)
    assert (await kube.get(LEASES, namespace, "test-lease"))["spec"]["holderIdentity"] == ""
    await eventually(lambda: b.is_leader, timeout=10, what="b to take over the released lease")
    lease = await kube.get(LEASES, namespace, "test-lease")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    assert log == ["a started", "a stopped", "b started"]
    await stop(task_b)


async def test_a_release_during_a_renewal_still_frees_the_lease(kube: KubeClient, namespace: str, sandbox):
    """A release that starts while a renewal is in flight waits for it instead of losing with a 409."""
    a = elector(kube, namespace, "a", [])
    assert await a.try_acquire_or_renew()
    a._leading = True  # as `run()` would after acquiring; renewals are driven by hand here
    latency = await sandbox.admin.aio.add_latency(0.3, verb="get", resource="leases", namespace=namespace)
    try:
        renewed, _ = await asyncio.gather(a.try_acquire_or_renew(), a.release())
    finally:
        await sandbox.admin.aio.clear_latency()
    assert latency and renewed
    assert (await kube.get(LEASES, namespace, "test-lease"))["spec"]["holderIdentity"] == ""
    assert not await a.try_acquire_or_renew(), "a released elector never campaigns again"


async def test_a_crashed_leader_is_replaced_only_after_the_lease_expires(kube: KubeClient, namespace: str):
    log: list[str] = []
    a, b = elector(kube, namespace, "a", log), elector(kube, namespace, "b", log)
    task_a = asyncio.create_task(a.run())
    await eventually(lambda: a.is_leader, what="a to lead")
    task_b = asyncio.create_task(b.run())
    await asyncio.sleep(TIMINGS["retry_period"] * 2)
    crashed = time.monotonic()
    await stop(task_a)  # no release: like a SIGKILL
    await eventually(lambda: b.is_leader, timeout=10, what="b to take over")
    waited = time.monotonic() - crashed
    assert waited >= TIMINGS["lease_duration"] - TIMINGS["retry_period"] * 2, "the expiry was respected"
    await stop(task_b)


async def test_a_leader_that_cannot_renew_steps_down(kube: KubeClient, namespace: str, sandbox):
    log: list[str] = []
    a = elector(kube, namespace, "a", log)
    task = asyncio.create_task(a.run())
    await eventually(lambda: a.is_leader, what="a to lead")
    admin = sandbox.admin.aio
    await admin.fail_requests(code=500, seconds=TIMINGS["renew_deadline"] + 1.5, resource="leases")
    await eventually(lambda: not a.is_leader, timeout=10, what="a to step down")
    await admin.clear_faults()
    await eventually(lambda: a.is_leader, timeout=10, what="a to lead again")
    assert log == ["a started", "a stopped", "a started"]
    await stop(task)


async def test_a_released_lease_is_not_taken_back_while_the_candidate_is_still_running(
    kube: KubeClient, namespace: str
):
    """Shutdown releases before it cancels the campaign: the campaign must not renew the lease it just gave up
    (the standby would then wait out a whole lease duration). Found by the chaos suite."""
    log: list[str] = []
    a = elector(kube, namespace, "a", log)
    task = asyncio.create_task(a.run())
    await eventually(lambda: a.is_leader, what="a to lead")
    await a.release()
    await asyncio.sleep(TIMINGS["retry_period"] * 5)  # several renewal rounds of a's campaign
    lease = await kube.get(LEASES, namespace, "test-lease")
    assert lease["spec"]["holderIdentity"] == "" and not a.is_leader
    assert log == ["a started", "a stopped"]
    await stop(task)
