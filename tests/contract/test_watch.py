"""Watches: resourceVersion semantics, event types, filtered watches, bookmarks, timeouts and 410 Expired.

https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-watch
https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks
https://kubernetes.io/docs/reference/using-api/api-concepts/#410-gone-responses
"""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.contract import kube
from tests.contract.kube import WatchStream, named


@pytest.fixture
async def listed(api, namespace, unique) -> str:
    """Two widgets `<unique>-1` and `<unique>-2`, labelled run=<unique>; returns the list's resourceVersion."""
    for index in (1, 2):
        body = kube.widget(f"{unique}-{index}", namespace)
        body["metadata"]["labels"] = {"run": unique}
        await kube.create(api, kube.widget_path(namespace), body)
    reply = await kube.request(api, "GET", kube.widget_path(namespace), query={"labelSelector": f"run={unique}"})
    version: str = reply.body["metadata"]["resourceVersion"]
    return version


async def test_a_watch_from_a_list_resource_version_sees_only_later_changes_in_order(api, namespace, unique, listed):
    query = {"resourceVersion": listed, "labelSelector": f"run={unique}", "timeoutSeconds": "30"}
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        assert stream.status == 200
        await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-1"), {"spec": {"size": 5}})
        await kube.request(api, "DELETE", kube.widget_path(namespace, f"{unique}-2"))
        third = kube.widget(f"{unique}-3", namespace)
        third["metadata"]["labels"] = {"run": unique}
        await kube.create(api, kube.widget_path(namespace), third)
        events = [await stream.next() for _ in range(3)]
    assert [(event["type"], named(event)) for event in events] == [
        ("MODIFIED", f"{unique}-1"),
        ("DELETED", f"{unique}-2"),
        ("ADDED", f"{unique}-3"),
    ]
    assert events[0]["object"]["spec"]["size"] == 5
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == sorted(versions)
    assert versions[0] > int(listed)


async def test_a_deleted_event_carries_the_last_state_at_a_new_resource_version(api, namespace, unique, listed):
    before = (await kube.get(api, kube.widget_path(namespace, f"{unique}-1"))).body
    query = {"resourceVersion": listed, "labelSelector": f"run={unique}", "timeoutSeconds": "30"}
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        await kube.request(api, "DELETE", kube.widget_path(namespace, f"{unique}-1"))
        event = await stream.next()
    assert event["type"] == "DELETED"
    assert event["object"]["spec"] == before["spec"]
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


@pytest.mark.parametrize("version", [None, "0"], ids=["unset", "zero"])
async def test_a_watch_without_a_specific_version_starts_with_synthetic_added_events(
    api, namespace, unique, listed, version
):
    query = {"labelSelector": f"run={unique}", "timeoutSeconds": "30"}
    if version is not None:
        query["resourceVersion"] = version
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        events = [await stream.next(), await stream.next()]
        await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-2"), {"spec": {"size": 1}})
        change = await stream.next()
    assert sorted((event["type"], named(event)) for event in events) == [
        ("ADDED", f"{unique}-1"),
        ("ADDED", f"{unique}-2"),
    ]
    assert (change["type"], named(change)) == ("MODIFIED", f"{unique}-2")


async def test_an_object_that_stops_matching_the_selector_is_deleted_and_one_that_starts_is_added(
    api, namespace, unique, listed
):
    query = {"resourceVersion": listed, "labelSelector": f"run={unique},stage=on", "timeoutSeconds": "30"}
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        await kube.merge_patch(
            api, kube.widget_path(namespace, f"{unique}-1"), {"metadata": {"labels": {"stage": "on"}}}
        )
        joined = await stream.next()
        await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-1"), {"spec": {"size": 7}})
        changed = await stream.next()
        await kube.merge_patch(
            api, kube.widget_path(namespace, f"{unique}-1"), {"metadata": {"labels": {"stage": "off"}}}
        )
        left = await stream.next()
    assert (joined["type"], named(joined)) == ("ADDED", f"{unique}-1")
    assert (changed["type"], changed["object"]["spec"]["size"]) == ("MODIFIED", 7)
    assert left["type"] == "DELETED"
    assert left["object"]["metadata"]["labels"]["stage"] == "on"  # its last state that matched
    assert int(left["object"]["metadata"]["resourceVersion"]) > int(changed["object"]["metadata"]["resourceVersion"])


async def test_a_field_selector_watch_of_one_name_sees_only_that_object(api, namespace, unique, listed):
    query = {"resourceVersion": listed, "fieldSelector": f"metadata.name={unique}-2", "timeoutSeconds": "30"}
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-1"), {"spec": {"size": 1}})
        await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-2"), {"spec": {"size": 2}})
        event = await stream.next()
    assert (event["type"], named(event)) == ("MODIFIED", f"{unique}-2")


async def test_the_server_ends_the_watch_at_timeout_seconds(api, namespace, listed):
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": listed, "timeoutSeconds": "1"}
    ) as stream:
        rest = await stream.rest(timeout=10)
    assert all(event["type"] != "ERROR" for event in rest)


async def test_bookmarks_carry_a_resource_version_and_no_object_content(api, namespace, listed):
    query = {"resourceVersion": listed, "allowWatchBookmarks": "true", "timeoutSeconds": "3"}
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        events = await stream.rest(timeout=15)
    bookmarks = [event for event in events if event["type"] == "BOOKMARK"]
    assert bookmarks, "a bookmark is sent before the timeout ends the watch"
    bookmark = bookmarks[-1]["object"]
    assert bookmark["kind"] == "Widget"
    assert bookmark["apiVersion"] == "contract.kubernaut.ai/v1"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(listed)
    assert "spec" not in bookmark


async def test_bookmarks_come_periodically_on_a_long_watch(api, namespace, listed, on_real_cluster):
    query = {"resourceVersion": listed, "allowWatchBookmarks": "true", "timeoutSeconds": "600"}
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        events = await stream.until(lambda event: event["type"] == "BOOKMARK", timeout=90 if on_real_cluster else 10)
    assert events[-1]["type"] == "BOOKMARK"


async def test_watch_list_sends_the_initial_state_then_a_bookmark_marking_its_end(api, namespace, unique, listed):
    query = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "labelSelector": f"run={unique}",
        "timeoutSeconds": "30",
    }
    async with WatchStream(api, kube.widget_path(namespace), query) as stream:
        events = await stream.until(
            lambda event: (
                event["type"] == "BOOKMARK"
                and event["object"]["metadata"].get("annotations", {}).get("k8s.io/initial-events-end") == "true"
            )
        )
    added = sorted(named(event) for event in events if event["type"] == "ADDED")
    assert added == [f"{unique}-1", f"{unique}-2"]


async def test_a_version_older_than_the_history_is_one_error_event_410_expired(api, namespace, ancient_version):
    async with WatchStream(api, kube.widget_path(namespace), {"resourceVersion": ancient_version}) as stream:
        assert stream.status == 200
        events = await stream.rest(timeout=10)
    assert len(events) == 1
    status = events[0]["object"]
    assert events[0]["type"] == "ERROR"
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version: ")


async def test_kubernetes_asyncio_watch_turns_the_410_into_an_api_exception(api, namespace, ancient_version):
    objects = client.CustomObjectsApi(api)
    stream = watch.Watch().stream(
        objects.list_namespaced_custom_object,
        "contract.kubernaut.ai",
        "v1",
        namespace,
        "widgets",
        resource_version=ancient_version,
        timeout_seconds=5,
    )
    with pytest.raises(ApiException) as raised:
        async for _ in stream:
            pass
    assert raised.value.status == 410


async def test_kubernetes_asyncio_watch_streams_typed_core_objects(api, unique):
    core = client.CoreV1Api(api)
    listed = await core.list_namespace()
    stream = watch.Watch().stream(
        core.list_namespace, resource_version=listed.metadata.resource_version, timeout_seconds=10
    )
    await kube.create(
        api, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": unique}}
    )
    try:
        async for event in stream:
            if event["object"].metadata.name == unique:
                assert event["type"] == "ADDED"
                assert event["object"].status.phase == "Active"
                break
    finally:
        await kube.request(api, "DELETE", f"/api/v1/namespaces/{unique}")


async def test_watching_a_resource_in_all_namespaces_sees_every_namespace(api, namespace, unique, listed):
    query = {"resourceVersion": listed, "labelSelector": f"run={unique}", "timeoutSeconds": "30"}
    async with WatchStream(api, kube.widget_path(None), query) as stream:
        await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-1"), {"spec": {"size": 3}})
        event = await stream.next()
    assert event["object"]["metadata"]["namespace"] == namespace
