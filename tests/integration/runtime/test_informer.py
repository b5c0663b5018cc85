"""The informer against the sandbox under faults: afterwards the cache equals the server and no delete was missed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from sandbox.audit import AuditRecord
from sandbox.testing import SandboxHandle
from shared.backoff import Backoff
from shared.models import RemediationRequest
from shared.runtime.client import KubeClient
from shared.runtime.informer import EventHandler, Informer
from shared.runtime.metrics import RuntimeMetrics
from shared.runtime.store import KubeDict, object_key
from tests import factories
from tests.integration.helpers import create_namespace, delete_namespace, eventually

RR = RemediationRequest.RESOURCE
pytestmark = pytest.mark.sandbox_only
FAST_BACKOFF = Backoff(timedelta(milliseconds=50), timedelta(milliseconds=500))


@dataclass
class Recorder:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: dict[str, KubeDict] = field(default_factory=dict)

    def handler(self) -> EventHandler:
        return EventHandler(
            on_add=lambda o: self.added.append(object_key(o)),
            on_update=lambda _, o: self.updated.append(object_key(o)),
            on_delete=lambda o: self.deleted.__setitem__(object_key(o), o),
        )


@dataclass
class Watched:
    informer: Informer
    recorder: Recorder
    metrics: RuntimeMetrics
    namespace: str

    def cached(self) -> dict[str, str]:
        return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in self.informer.store.list()}

    def restarts(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "test_informer_watch_restarts_total", {"resource": "remediationrequests", "reason": reason}
        )
        return value or 0.0

    def relists(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "test_informer_relists_total", {"resource": "remediationrequests"}
        )
        return value or 0.0


@pytest.fixture
async def watched(kube: KubeClient, namespace: str) -> AsyncIterator[Watched]:
    for i in range(5):
        await kube.create(RR, factories.remediation_request(f"rr-{i}", namespace))
    metrics = RuntimeMetrics("test_")
    informer = Informer(kube, RR, namespaces=[namespace], metrics=metrics, inactivity_timeout=3.0, backoff=FAST_BACKOFF)
    recorder = Recorder()
    informer.add_event_handler(recorder.handler())
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(informer.wait_for_sync(), 10)
    try:
        yield Watched(informer, recorder, metrics, namespace)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def server_state(kube: KubeClient, namespace: str) -> dict[str, str]:
    items = (await kube.list(RR, namespace))["items"]
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items}


async def mutate(kube: KubeClient, namespace: str) -> set[str]:
    """Create two, change one, delete two; returns the names deleted."""
    await kube.create(RR, factories.remediation_request("rr-new-1", namespace))
    await kube.create(RR, factories.remediation_request("rr-new-2", namespace))
    await kube.patch_status(RR, namespace, "rr-0", {"phase": "Pending"})
    await kube.delete(RR, namespace, "rr-1")
    await kube.delete(RR, namespace, "rr-2")
    return {f"{namespace}/rr-1", f"{namespace}/rr-2"}


async def converged(kube: KubeClient, watched: Watched, deleted: set[str]) -> None:
    async def equal() -> bool:
        return watched.cached() == await server_state(kube, watched.namespace)

    await eventually(equal, timeout=15, what="the cache to equal the server")
    assert deleted <= set(watched.recorder.deleted), "every delete reaches the handlers"
    for key in deleted:
        assert watched.recorder.deleted[key]["metadata"]["name"] == key.split("/")[1], "with the last known object"


async def test_initial_list_fills_the_cache_and_tells_the_handlers(kube: KubeClient, watched: Watched):
    assert len(watched.informer.store) == 5
    assert sorted(watched.recorder.added) == [f"{watched.namespace}/rr-{i}" for i in range(5)]
    await converged(kube, watched, set())


async def test_changes_arrive_through_the_watch(kube: KubeClient, watched: Watched):
    await converged(kube, watched, await mutate(kube, watched.namespace))
    assert f"{watched.namespace}/rr-0" in watched.recorder.updated


async def test_dropped_watches_resume_from_the_last_version(kube: KubeClient, sandbox: SandboxHandle, watched: Watched):
    admin = sandbox.admin.aio
    await admin.hang_watches()  # blind but connected: what happens now must come from the history on re-watch
    deleted = await mutate(kube, watched.namespace)
    await admin.drop_watches()
    await admin.release_watches()
    await converged(kube, watched, deleted)
    assert (
        watched.metrics.registry.get_sample_value("test_informer_relists_total", {"resource": "remediationrequests"})
        == 1
    ), "a re-watch from the last version needs no relist"


async def test_410_gone_relists_and_reports_the_deletes_it_missed(
    kube: KubeClient, sandbox: SandboxHandle, watched: Watched
):
    admin = sandbox.admin.aio
    await admin.hang_watches()
    deleted = await mutate(kube, watched.namespace)
    await admin.compact_history()  # the informer's version is now older than anything the server remembers
    await admin.drop_watches()
    await admin.release_watches()
    await converged(kube, watched, deleted)
    relists = watched.metrics.registry.get_sample_value(
        "test_informer_relists_total", {"resource": "remediationrequests"}
    )
    assert relists == 2
    assert (
        watched.metrics.registry.get_sample_value(
            "test_informer_watch_expired_total", {"resource": "remediationrequests"}
        )
        == 1
    )


async def test_forced_410_on_the_next_watch(kube: KubeClient, sandbox: SandboxHandle, watched: Watched):
    admin = sandbox.admin.aio
    await admin.expire_next_watches(1, resource="remediationrequests")
    await admin.drop_watches()
    deleted = await mutate(kube, watched.namespace)
    await converged(kube, watched, deleted)


@pytest.mark.parametrize("code", [500, 429])
async def test_error_bursts_back_off_and_recover(kube: KubeClient, sandbox: SandboxHandle, watched: Watched, code: int):
    admin = sandbox.admin.aio
    await admin.fail_requests(code=code, count=3, resource="remediationrequests", verb="watch")
    await admin.drop_watches()
    deleted = await mutate(kube, watched.namespace)
    await converged(kube, watched, deleted)
    assert watched.restarts("error") >= 3


async def test_retry_after_is_honoured(kube: KubeClient, sandbox: SandboxHandle, watched: Watched):
    admin = sandbox.admin.aio
    since = max([record.sequence for record in await admin.audit()] or [0])
    await admin.fail_requests(code=429, count=1, retry_after=2, resource="remediationrequests", verb="watch")
    await admin.drop_watches()

    async def watches_after_429() -> list[AuditRecord]:
        records = [
            record
            for record in await admin.audit(since=since)
            if record.verb == "watch" and record.resource == "remediationrequests"
        ]
        throttled = [record for record in records if record.code == 429]
        later = [record for record in records if throttled and record.sequence > throttled[0].sequence]
        return [throttled[0], later[0]] if later else []

    throttled, next_watch = await eventually(watches_after_429, timeout=10, what="a watch after the 429")
    assert next_watch.time - throttled.time >= 1.9


async def test_a_hung_stream_is_abandoned_after_the_inactivity_timeout(
    kube: KubeClient, sandbox: SandboxHandle, watched: Watched
):
    admin = sandbox.admin.aio
    await admin.hang_watches(seconds=6)
    deleted = await mutate(kube, watched.namespace)
    await eventually(lambda: watched.restarts("inactivity") >= 1, timeout=10, what="an inactivity restart")
    await converged(kube, watched, deleted)


async def test_api_server_restart(kube: KubeClient, sandbox: SandboxHandle, watched: Watched):
    await sandbox.admin.aio.restart()
    deleted = await mutate(kube, watched.namespace)
    await converged(kube, watched, deleted)


async def test_api_server_down_for_a_while(kube: KubeClient, sandbox: SandboxHandle, watched: Watched):
    await sandbox.admin.aio.down(1.5)
    await eventually(lambda: watched.restarts("error") >= 1, timeout=10, what="the informer to notice")

    async def mutated() -> set[str] | None:
        try:
            return await mutate(kube, watched.namespace)
        except Exception:
            return None

    deleted = await eventually(mutated, timeout=10, what="the API to come back")
    await converged(kube, watched, deleted)


async def test_lines_longer_than_128_kib_are_read(kube: KubeClient, watched: Watched):
    big = factories.remediation_request("rr-big", watched.namespace)
    big["metadata"]["annotations"] = {"example.com/blob": "x" * 200_000}
    await kube.create(RR, big)
    cached = await eventually(lambda: watched.informer.store.get(f"{watched.namespace}/rr-big"), what="rr-big")
    assert len(cached["metadata"]["annotations"]["example.com/blob"]) == 200_000


async def test_bookmarks_let_a_watch_resume_past_changes_it_never_saw(
    kube: KubeClient, sandbox: SandboxHandle, watched: Watched
):
    admin = sandbox.admin.aio
    elsewhere = await create_namespace(kube)
    await kube.create(RR, factories.remediation_request("elsewhere", elsewhere))

    async def bookmarked() -> bool:
        ours = [w for w in await admin.watches() if w["namespace"] == watched.namespace]
        return bool(ours) and all(w["eventsSent"] >= 1 for w in ours)

    await eventually(bookmarked, timeout=10, what="a bookmark on the informer's watch")
    relists = watched.relists()
    # Forget the history: a watch resuming from the listed version would now get 410 Gone and relist.
    await admin.compact_history()
    await admin.drop_watches()
    deleted = await mutate(kube, watched.namespace)
    await converged(kube, watched, deleted)
    assert watched.relists() == relists, "resumed from the bookmark's version, no relist"
    await delete_namespace(kube, elsewhere)


async def test_write_through_is_visible_at_once_and_never_regresses(kube: KubeClient, watched: Watched):
    created = await kube.create(RR, factories.remediation_request("rr-written", watched.namespace))
    key = f"{watched.namespace}/rr-written"
    watched.informer.write_through(created)
    assert watched.informer.store.get(key)["metadata"]["uid"] == created["metadata"]["uid"]
    stale = dict(created)
    assert not watched.informer.write_through(stale), "a create never overwrites what the cache holds"
    updated = await kube.patch_status(RR, watched.namespace, "rr-written", {"phase": "Pending"})
    assert not watched.informer.write_through(updated, replaces="not-the-cached-version")


async def test_a_relist_tells_the_handlers_about_a_version_only_written_through(
    kube: KubeClient, sandbox: SandboxHandle, watched: Watched
):
    """Written-through versions reach the cache without the handlers: when the watch event that would have told
    them is lost to a 410, the relist must. (The orchestrator's "a request ended: wake its duplicates" runs there;
    the chaos suite found duplicates left waiting on a completed original.)"""
    seen: list[tuple[str, str]] = []
    watched.informer.add_event_handler(
        EventHandler(
            on_update=lambda _, new: seen.append((new["metadata"]["name"], new["metadata"]["resourceVersion"]))
        )
    )
    admin = sandbox.admin.aio
    await admin.hang_watches()
    before = watched.informer.store.get(f"{watched.namespace}/rr-0")
    updated = await kube.patch_status(RR, watched.namespace, "rr-0", {"phase": "Completed"})
    assert watched.informer.write_through(updated, replaces=before["metadata"]["resourceVersion"])
    await admin.compact_history()  # the watch event of that write is lost with the hung stream
    await admin.drop_watches()
    await admin.release_watches()
    await eventually(lambda: watched.relists() == 2, what="the relist")
    await eventually(lambda: ("rr-0", updated["metadata"]["resourceVersion"]) in seen, what="the handlers told")


async def test_a_watch_whose_response_never_starts_is_abandoned_and_the_informer_recovers(
    kube: KubeClient, sandbox: SandboxHandle, namespace: str
):
    """Issue 18.2: with latency on watches the response headers never came, no client timeout applied, and the
    informer saw nothing for minutes without a word. Lists stay fast; only the watch stalls."""
    admin = sandbox.admin.aio
    user = f"system:serviceaccount:{namespace}:stalled"
    client = await KubeClient.connect(sandbox.kubeconfig_for(user), user_agent="stalled")
    metrics = RuntimeMetrics("test_")
    informer = Informer(client, RR, namespaces=[namespace], metrics=metrics, response_timeout=1.0, backoff=FAST_BACKOFF)
    watched = Watched(informer, Recorder(), metrics, namespace)
    informer.add_event_handler(watched.recorder.handler())
    await admin.add_latency(600.0, verb="watch", user=user)
    task = asyncio.create_task(informer.run())
    try:
        with capture_logs() as logs:
            await asyncio.wait_for(informer.wait_for_sync(), 10)
            await eventually(lambda: watched.restarts("inactivity") >= 2, timeout=10, what="stalled watches")
        stalls = [entry for entry in logs if entry["event"] == "informer.watch_stalled"]
        assert stalls and stalls[0]["waiting"] == "response" and stalls[0]["resource"] == "remediationrequests"
        await admin.clear_latency()
        deleted = await mutate_fresh(kube, namespace)
        await converged(kube, watched, deleted)
    finally:
        await admin.clear_latency()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def mutate_fresh(kube: KubeClient, namespace: str) -> set[str]:
    """Create two, delete one of them: changes only a working watch (or a relist) can show."""
    await kube.create(RR, factories.remediation_request("rr-late-1", namespace))
    await kube.create(RR, factories.remediation_request("rr-late-2", namespace))
    await kube.delete(RR, namespace, "rr-late-1")
    return {f"{namespace}/rr-late-1"}
