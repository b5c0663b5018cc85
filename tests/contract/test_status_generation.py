"""The status subresource and metadata.generation of custom resources.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource
"""

from __future__ import annotations

from tests.contract import kube


async def test_create_ignores_the_status_it_is_given(api, namespace, unique):
    body = kube.widget(unique, namespace)
    body["status"] = {"phase": "Ready"}
    created = await kube.create(api, kube.widget_path(namespace), body)
    assert "status" not in created


async def test_the_main_endpoint_ignores_status_changes(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    await kube.merge_patch(api, kube.widget_path(namespace, unique, "status"), {"status": {"phase": "Ready"}})
    reply = await kube.merge_patch(
        api, kube.widget_path(namespace, unique), {"status": {"phase": "Broken"}, "spec": {"size": 2}}
    )
    assert reply.body["status"] == {"phase": "Ready"}
    assert reply.body["spec"]["size"] == 2


async def test_the_status_endpoint_changes_only_the_status(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace, color="red"))
    patch = {"metadata": {"labels": {"x": "y"}}, "spec": {"color": "blue"}, "status": {"phase": "Ready"}}
    reply = await kube.merge_patch(api, kube.widget_path(namespace, unique, "status"), patch)
    assert reply.status == 200
    assert reply.body["status"] == {"phase": "Ready"}
    assert reply.body["spec"] == {"color": "red"}
    assert "labels" not in reply.body["metadata"]


async def test_put_to_the_status_endpoint_with_a_stale_resource_version_is_409(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"size": 1}})
    created["status"] = {"phase": "Ready"}
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique, "status"), body=created)
    assert reply.status == 409


async def test_get_of_the_status_endpoint_returns_the_whole_object(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    reply = await kube.get(api, kube.widget_path(namespace, unique, "status"))
    assert reply.status == 200
    assert reply.body == created


async def test_a_spec_change_bumps_generation(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace, size=1))
    reply = await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"size": 2}})
    assert reply.body["metadata"]["generation"] == 2


async def test_metadata_and_status_changes_keep_generation(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    labelled = await kube.merge_patch(api, kube.widget_path(namespace, unique), {"metadata": {"labels": {"a": "b"}}})
    status = await kube.merge_patch(
        api, kube.widget_path(namespace, unique, "status"), {"status": {"observedGeneration": 1}}
    )
    assert labelled.body["metadata"]["generation"] == 1
    assert status.body["metadata"]["generation"] == 1
    assert int(status.body["metadata"]["resourceVersion"]) > int(labelled.body["metadata"]["resourceVersion"])


async def test_generation_in_the_body_is_ignored(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    created["metadata"]["generation"] = 42
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.body["metadata"]["generation"] == 1


async def test_status_of_a_kind_without_the_subresource_is_404(api, namespace, unique):
    path = kube.resource_path("serviceaccounts", namespace, group="", version="v1")
    await kube.create(api, path, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": unique}})
    reply = await kube.get(api, f"{path}/{unique}/status")
    assert reply.status == 404
