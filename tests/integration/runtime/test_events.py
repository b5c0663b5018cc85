"""Kubernetes Events: repeats aggregate into a count, a hot loop is cut off, failures never reach the caller."""

from __future__ import annotations

import asyncio

import pytest

from shared.apiresource import EVENTS
from shared.models import RemediationRequest
from shared.runtime.client import KubeClient
from shared.runtime.events import EventRecorder
from shared.runtime.metrics import RuntimeMetrics
from tests import factories

RR = RemediationRequest.RESOURCE


@pytest.fixture
def metrics() -> RuntimeMetrics:
    return RuntimeMetrics("test_")


def events_total(metrics: RuntimeMetrics, outcome: str) -> float | None:
    return metrics.registry.get_sample_value("test_kube_events_total", {"outcome": outcome})


@pytest.fixture
async def recorder(kube: KubeClient, metrics: RuntimeMetrics):
    recorder = EventRecorder(kube, "tests", metrics=metrics, burst=5, refill_seconds=3600)
    task = asyncio.create_task(recorder.run())
    yield recorder
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def events_of(kube: KubeClient, namespace: str) -> list[dict]:
    return (await kube.list(EVENTS, namespace))["items"]


async def test_repeats_are_aggregated_into_one_event_with_a_count(kube: KubeClient, namespace: str, recorder):
    rr = await kube.create(RR, factories.remediation_request("rr", namespace))
    for _ in range(3):
        recorder.event(rr, "Normal", "Blocked", "ResourceBusy: busy")
        await recorder.flush()
    recorder.event(rr, "Warning", "Failed", "something else")
    await recorder.flush()
    events = await events_of(kube, namespace)
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 2
    assert by_reason["Blocked"]["count"] == 3
    assert by_reason["Blocked"]["involvedObject"]["uid"] == rr["metadata"]["uid"]
    assert by_reason["Failed"]["type"] == "Warning" and by_reason["Failed"]["source"]["component"] == "tests"


async def test_a_hot_loop_is_cut_off_by_the_spam_filter(kube: KubeClient, namespace: str, recorder):
    rr = await kube.create(RR, factories.remediation_request("rr", namespace))
    for i in range(20):
        recorder.event(rr, "Normal", "Blocked", f"message {i}")
    await recorder.flush()
    assert len(await events_of(kube, namespace)) == 5


async def test_api_errors_are_counted_not_raised(kube: KubeClient, namespace: str, recorder, metrics, sandbox):
    rr = await kube.create(RR, factories.remediation_request("rr", namespace))
    await sandbox.admin.aio.fail_requests(code=500, count=1, resource="events", verb="create")
    recorder.event(rr, "Normal", "Blocked", "lost")
    await recorder.flush()
    assert events_total(metrics, "failed") == 1
    recorder.event(rr, "Normal", "Blocked", "kept")
    await recorder.flush()
    assert events_total(metrics, "created") == 1


async def test_an_object_with_a_253_character_name_gets_its_events(kube: KubeClient, namespace: str, recorder, metrics):
    """Issue 17.7: `<object>.<hex time>` exceeded 253 characters and the Event was refused (422)."""
    long_names = ["r" * 253, "r" * 230 + "." + "s" * 22, "r" * 237]
    objects = [await kube.create(RR, factories.remediation_request(name, namespace)) for name in long_names]
    for obj in objects:
        recorder.event(obj, "Normal", "Blocked", "ResourceBusy: busy")
        recorder.event(obj, "Warning", "Failed", "failed")
    await recorder.flush()
    events = await events_of(kube, namespace)
    assert events_total(metrics, "failed") is None
    assert sorted((e["involvedObject"]["name"], e["reason"]) for e in events) == sorted(
        (name, reason) for name in long_names for reason in ("Blocked", "Failed")
    )
    assert all(len(e["metadata"]["name"]) <= 253 for e in events)
