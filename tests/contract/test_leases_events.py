"""Leases for leader election, and Events through both of their API groups.

https://kubernetes.io/docs/concepts/architecture/leases/
https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.contract import kube

LEASES = "coordination.k8s.io"


def lease(name: str, holder: str, renew: str) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "renewTime": renew,
            "acquireTime": renew,
            "leaseTransitions": 0,
        },
    }


async def test_a_lease_is_created_renewed_and_taken_over_with_optimistic_concurrency(api, namespace, unique):
    path = kube.resource_path("leases", namespace, group=LEASES, version="v1")
    acquired = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = await kube.create(api, path, lease(unique, "a", acquired.strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
    renewed = dict(created)
    renewed["spec"] = {
        **created["spec"],
        "renewTime": (acquired + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    first = await kube.request(api, "PUT", f"{path}/{unique}", body=renewed)
    assert first.status == 200
    taken = dict(created)  # a second candidate still holding the first version loses the race
    taken["spec"] = {**created["spec"], "holderIdentity": "b", "leaseTransitions": 1}
    second = await kube.request(api, "PUT", f"{path}/{unique}", body=taken)
    assert second.status == 409
    assert second.body["reason"] == "Conflict"


MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"  # metav1.RFC3339Micro


async def test_lease_times_are_micro_times_with_exactly_six_fractional_digits(api, namespace, unique):
    path = kube.resource_path("leases", namespace, group=LEASES, version="v1")
    created = await kube.create(api, path, lease(unique, "a", "2026-01-02T03:04:05.123456Z"))
    assert created["spec"]["renewTime"] == "2026-01-02T03:04:05.123456Z"
    # Checked against kube-apiserver v1.36.2: seconds only is a 400 from the decoder, not a 422 from validation.
    reply = await kube.request(api, "POST", path, body=lease(f"{unique}-s", "a", "2026-01-02T03:04:05Z"))
    assert reply.status == 400
    assert reply.body["reason"] == "BadRequest"
    assert reply.body["message"].endswith(
        f'parsing time "2026-01-02T03:04:05Z" as "{MICRO_LAYOUT}": cannot parse "Z" as ".000000"'
    )


async def test_an_event_time_is_a_micro_time_too(api, namespace, unique):
    # The same type (metav1.MicroTime) through the same decoder as the Lease above (kube-apiserver v1.36.2).
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": unique},
        "regarding": {"kind": "Widget", "name": "w", "namespace": namespace},
        "reason": "Tested",
        "note": "hello",
        "type": "Normal",
        "eventTime": "2026-01-02T03:04:05.123Z",
        "reportingController": "kubernaut.ai/contract",
        "reportingInstance": "i-1",
        "action": "Test",
    }
    reply = await kube.request(
        api, "POST", kube.resource_path("events", namespace, group="events.k8s.io", version="v1"), body=body
    )
    assert reply.status == 400
    assert reply.body["reason"] == "BadRequest"
    assert reply.body["message"].endswith(
        f'parsing time "2026-01-02T03:04:05.123Z" as "{MICRO_LAYOUT}": cannot parse ".123Z" as ".000000"'
    )


async def test_a_lease_duration_must_be_positive(api, namespace, unique):
    path = kube.resource_path("leases", namespace, group=LEASES, version="v1")
    body = lease(unique, "a", "2026-01-02T03:04:05.000000Z")
    body["spec"]["leaseDurationSeconds"] = 0
    reply = await kube.request(api, "POST", path, body=body)
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "spec.leaseDurationSeconds"


async def test_an_event_created_in_v1_is_read_through_events_k8s_io(api, namespace, unique):
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": unique},
        "involvedObject": {"kind": "Widget", "name": "w", "namespace": namespace},
        "reason": "Tested",
        "message": "hello",
        "type": "Normal",
        "source": {"component": "contract-tests"},
        "firstTimestamp": "2026-01-02T03:04:05Z",
        "lastTimestamp": "2026-01-02T03:04:05Z",
        "count": 1,
    }
    await kube.create(api, kube.resource_path("events", namespace, group="", version="v1"), body)
    reply = await kube.get(api, kube.resource_path("events", namespace, unique, group="events.k8s.io", version="v1"))
    assert reply.status == 200
    assert reply.body["apiVersion"] == "events.k8s.io/v1"
    assert reply.body["regarding"]["name"] == "w"
    assert reply.body["note"] == "hello"
    assert reply.body["deprecatedCount"] == 1


async def test_an_event_created_in_events_k8s_io_needs_the_reporting_fields(api, namespace, unique):
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": unique},
        "regarding": {"kind": "Widget", "name": "w", "namespace": namespace},
        "reason": "Tested",
        "note": "hello",
        "type": "Normal",
    }
    path = kube.resource_path("events", namespace, group="events.k8s.io", version="v1")
    without_time = await kube.request(api, "POST", path, body=body)
    assert without_time.status == 422
    assert "eventTime" in {cause["field"] for cause in without_time.body["details"]["causes"]}
    body["eventTime"] = "2026-01-02T03:04:05.000000Z"
    without_reporter = await kube.request(api, "POST", path, body=body)
    assert without_reporter.status == 422
    fields = {cause["field"] for cause in without_reporter.body["details"]["causes"]}
    assert {"reportingController", "reportingInstance", "action"} <= fields
    body.update(reportingController="kubernaut.ai/contract", reportingInstance="i-1", action="Test")
    created = await kube.create(api, path, body)
    core = await kube.get(api, kube.resource_path("events", namespace, unique, group="", version="v1"))
    assert created["note"] == "hello"
    assert core.body["message"] == "hello"
    assert core.body["reportingComponent"] == "kubernaut.ai/contract"


async def test_events_are_selectable_by_involved_object(api, namespace, unique):
    path = kube.resource_path("events", namespace, group="", version="v1")
    for name, target in ((f"{unique}-1", "one"), (f"{unique}-2", "two")):
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name},
            "involvedObject": {"kind": "Widget", "name": target, "namespace": namespace},
            "reason": "Tested",
            "message": "m",
            "type": "Normal",
        }
        await kube.create(api, path, body)
    reply = await kube.request(api, "GET", path, query={"fieldSelector": "involvedObject.name=two,reason=Tested"})
    assert [item["metadata"]["name"] for item in reply.body["items"]] == [f"{unique}-2"]


async def test_an_event_put_to_a_new_name_is_created(api, namespace, unique):
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": unique, "namespace": namespace},
        "involvedObject": {"kind": "Widget", "name": "w", "namespace": namespace},
        "reason": "Tested",
        "message": "m",
        "type": "Normal",
    }
    reply = await kube.request(
        api, "PUT", kube.resource_path("events", namespace, unique, group="", version="v1"), body=body
    )
    assert reply.status == 201


async def test_events_k8s_io_selects_by_regarding(api, namespace, unique):
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": unique},
        "involvedObject": {"kind": "Widget", "name": f"{unique}-target", "namespace": namespace},
        "reason": "Tested",
        "message": "m",
        "type": "Normal",
    }
    await kube.create(api, kube.resource_path("events", namespace, group="", version="v1"), body)
    path = kube.resource_path("events", namespace, group="events.k8s.io", version="v1")
    reply = await kube.request(api, "GET", path, query={"fieldSelector": f"regarding.name={unique}-target"})
    assert [item["metadata"]["name"] for item in reply.body["items"]] == [unique]
