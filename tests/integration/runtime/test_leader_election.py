"""Leader election on a Lease in the sandbox: one leader, release hands over at once, a crash after expiry."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from structlog.testing import capture_logs

from sandbox.testing import SandboxHandle
from shared.apiresource import LEASES
from shared.runtime.client import FENCED, ApiError, KubeClient
from shared.runtime.controller import Result
from shared.runtime.leaderelection import LeaderElector
from shared.runtime.manager import Manager
from shared.runtime.metrics import RuntimeMetrics
from shared.settings import ControllerSettings
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


class Replica:
    """A Manager with leader election whose one controller reconciles without pause, recording when it did."""

    def __init__(self, name: str, kube: KubeClient, namespace: str, timings: tuple[float, float, float]) -> None:
        self.name = name
        self.user = f"system:serviceaccount:{namespace}:{name}"
        self.intervals: list[list[float]] = []  # [start, end] of each reconcile, on this process's monotonic clock
        settings = ControllerSettings(
            bind_address="127.0.0.1", metrics_port=0, health_port=0, leader_election=True, lease_namespace=namespace
        )
        self.manager = Manager(
            kube, settings, component=name, metrics_prefix=f"{name}_", lease_name="replicas", lease_timings=timings
        )
        self.manager.controller("busy", self.reconcile, workers=2, resync=lambda: ["a", "b"])
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.manager.run(self.stop))

    async def reconcile(self, key: str) -> Result:
        interval = [time.monotonic(), float("inf")]
        self.intervals.append(interval)
        try:
            await asyncio.sleep(0.01)  # where a reconcile would read and write
        finally:
            interval[1] = time.monotonic()
        return Result.after(0.01)

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)


async def test_slow_lease_requests_never_leave_two_leaders_reconciling_at_once(sandbox: SandboxHandle, namespace: str):
    """Issue 18.1: a renewal in flight past the renew deadline kept the old leader reconciling after the Lease
    expired for the standby. Here the leader's Lease GETs take 1.5 s and its PUTs hang: it must stop reconciling
    before a standby can count the Lease as expired, and the standby must then take over."""
    timings = (6.0, 5.0, 1.0)  # lease duration, renew deadline, retry period
    margin = 0.2
    clients = []
    for user in ("first", "second"):
        path = sandbox.kubeconfig_for(f"system:serviceaccount:{namespace}:{user}")
        clients.append(await KubeClient.connect(path, user_agent=user))
    first = Replica("first", clients[0], namespace, timings)
    await eventually(lambda: first.manager.is_leader and len(first.intervals) > 10, what="first to lead")
    second = Replica("second", clients[1], namespace, timings)
    admin = sandbox.admin.aio
    try:
        await eventually(lambda: second.manager.elector._observed, what="second to see the Lease")
        await admin.add_latency(1.5, verb="get", resource="leases", user=first.user)
        await admin.add_latency(60.0, verb="update", resource="leases", user=first.user)
        await eventually(lambda: second.manager.is_leader, timeout=30, what="second to take over")
        first_still_leading = first.manager.is_leader
        await eventually(lambda: len(second.intervals) > 10, what="second to reconcile")
    finally:
        await admin.clear_latency()
        await second.shutdown()
        await first.shutdown()
        for client in clients:
            await client.close()
    handover = min(start for start, _ in second.intervals)
    last_of_first = max(end for _, end in first.intervals)
    assert last_of_first + margin <= handover, (
        f"first reconciled until {last_of_first - handover:+.3f} s after second started"
    )
    assert not first_still_leading, "two leaders at once"


async def test_a_lease_taken_too_slowly_to_lead_is_held_without_leading(kube: KubeClient, namespace: str, sandbox):
    """An acquisition whose PUT takes most of the renew deadline would start the controllers only to cancel them
    at once; the candidate holds the Lease and leads on its first quick renewal instead."""
    log: list[str] = []
    # Too slow: writes taking over renew_deadline - retry_period (2 s) but well within renew_deadline (3 s).
    a = LeaderElector(
        kube,
        namespace=namespace,
        name="test-lease",
        identity="a",
        lease_duration=4.0,
        renew_deadline=3.0,
        retry_period=1.0,
        on_started_leading=lambda: log.append("a started"),
        on_stopped_leading=lambda: log.append("a stopped"),
    )
    admin = sandbox.admin.aio
    for verb in ("create", "update"):
        await admin.add_latency(2.4, verb=verb, resource="leases", namespace=namespace)
    task = asyncio.create_task(a.run())
    try:
        versions: set[str] = set()

        async def renewed_twice_by_a() -> bool:
            try:
                lease = await kube.get(LEASES, namespace, "test-lease")
            except ApiError:
                return False
            if lease["spec"].get("holderIdentity") == "a":
                versions.add(lease["metadata"]["resourceVersion"])
            return len(versions) >= 3

        await eventually(renewed_twice_by_a, timeout=20, what="a to hold the Lease through slow writes")
        assert not a.is_leader and log == []
        await admin.clear_latency()
        await eventually(lambda: a.is_leader, timeout=10, what="a to lead once its writes are quick")
        assert log == ["a started"]
    finally:
        await admin.clear_latency()
        await stop(task)


async def test_a_leader_that_sees_another_holder_steps_down_at_once(kube: KubeClient, namespace: str):
    """Renewing until the deadline while the Lease names someone else would be two leaders for that long."""
    log: list[str] = []
    a = elector(kube, namespace, "a", log)
    task = asyncio.create_task(a.run())
    try:
        await eventually(lambda: a.is_leader, what="a to lead")
        lease = await kube.get(LEASES, namespace, "test-lease")
        with capture_logs() as logs:
            await kube.replace(LEASES, {**lease, "spec": {**lease["spec"], "holderIdentity": "intruder"}})
            await eventually(lambda: not a.is_leader, timeout=10, what="a to step down")
        lost = [entry for entry in logs if entry["event"] == "leader.lost"]
        assert [(entry["reason"], entry["holder"]) for entry in lost] == [("taken", "intruder")]
        assert log == ["a started", "a stopped"]
    finally:
        await stop(task)


async def test_a_leader_whose_event_loop_stalls_past_its_deadline_sends_no_write(
    sandbox: SandboxHandle, kube: KubeClient, namespace: str
):
    """Beyond issue 18.1's margin: a leader's event loop is blocked past its renew deadline (CPU throttling, a long
    pause) inside a reconcile that then writes. When the loop resumes, that reconcile runs on before the elector can
    step down, and another replica may lead by now: the write must not be sent. It is refused by the client (reason
    LeadershipExpired), the leader steps down, leads again after a renewal, and its next write goes out."""
    timings = (3.0, 2.0, 0.2)  # lease duration, renew deadline, retry period
    user = f"system:serviceaccount:{namespace}:stalling"
    client = await KubeClient.connect(sandbox.kubeconfig_for(user), user_agent="stalling")
    outcomes: list[str] = []
    attempts = itertools.count()

    async def reconcile(key: str) -> Result:
        name = f"written-{next(attempts)}"
        if name == "written-0":
            time.sleep(timings[1] + 0.3)  # blocks the event loop: no renewal and no step-down can run meanwhile
        try:
            await client.create(LEASES, {"metadata": {"name": name, "namespace": namespace}, "spec": {}}, namespace)
        except ApiError as error:
            outcomes.append(error.reason)
            raise
        outcomes.append(name)
        return Result.done()

    settings = ControllerSettings(
        bind_address="127.0.0.1", metrics_port=0, health_port=0, leader_election=True, lease_namespace=namespace
    )
    manager = Manager(
        client, settings, component="stalling", metrics_prefix="stalling_", lease_name="stalling", lease_timings=timings
    )
    manager.controller("writer", reconcile, workers=1, resync=lambda: ["only"])
    stop_event = asyncio.Event()
    task = asyncio.create_task(manager.run(stop_event))
    try:
        with capture_logs() as logs:
            await eventually(lambda: "written-1" in outcomes, timeout=20, what="a write after leading again")
    finally:
        stop_event.set()
        await asyncio.wait_for(task, 20)
        await client.close()
    assert outcomes[:2] == [FENCED, "written-1"]
    stored = {lease["metadata"]["name"] for lease in (await kube.list(LEASES, namespace))["items"]}
    assert "written-0" not in stored and "written-1" in stored  # the refused write never reached the server
    leadership = [entry["event"] for entry in logs if entry["event"].startswith("leader.")]
    lost = leadership.index("leader.lost")
    assert "leader.started_leading" in leadership[lost:], leadership
