"""Updates and patches: optimistic concurrency, the three patch types, no-op writes.

https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply
"""

from __future__ import annotations

from tests.contract import kube

CONFLICT = "the object has been modified; please apply your changes to the latest version and try again"


async def test_put_with_the_current_resource_version_replaces_the_object(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace, color="red"))
    created["spec"]["color"] = "blue"
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.status == 200
    assert reply.body["spec"]["color"] == "blue"
    assert int(reply.body["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_put_with_a_stale_resource_version_is_409_conflict(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"size": 1}})
    created["spec"]["size"] = 2
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.status == 409
    assert reply.body["reason"] == "Conflict"
    assert (
        reply.body["message"]
        == f'Operation cannot be fulfilled on widgets.contract.kubernaut.ai "{unique}": {CONFLICT}'
    )
    assert reply.body["details"] == {"name": unique, "group": "contract.kubernaut.ai", "kind": "widgets"}


async def test_put_of_a_custom_resource_without_resource_version_is_422(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    del created["metadata"]["resourceVersion"]
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.status == 422
    [cause] = reply.body["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "metadata.resourceVersion")
    assert cause["message"].endswith("must be specified for an update")  # older servers print "Invalid value: 0x0"


async def test_put_of_a_built_in_kind_without_resource_version_is_an_unconditional_update(api, namespace, unique):
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": unique, "namespace": namespace}}
    await kube.create(api, kube.resource_path("serviceaccounts", namespace, group="", version="v1"), body)
    body["metadata"]["labels"] = {"changed": "yes"}
    reply = await kube.request(
        api, "PUT", kube.resource_path("serviceaccounts", namespace, unique, group="", version="v1"), body=body
    )
    assert reply.status == 200
    assert reply.body["metadata"]["labels"] == {"changed": "yes"}


async def test_a_name_in_the_body_that_differs_from_the_url_is_400(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    created["metadata"]["name"] = "someone-else"
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.status == 400
    assert reply.body["reason"] == "BadRequest"


async def test_an_update_that_changes_nothing_keeps_the_resource_version(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.status == 200
    assert reply.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_merge_patch_merges_maps_and_null_removes_a_field(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace, color="red", size=3))
    reply = await kube.merge_patch(
        api,
        kube.widget_path(namespace, unique),
        {"metadata": {"labels": {"a": "b"}}, "spec": {"size": None, "note": "hi"}},
    )
    assert reply.status == 200
    assert reply.body["spec"] == {"color": "red", "note": "hi"}
    assert reply.body["metadata"]["labels"] == {"a": "b"}


async def test_merge_patch_replaces_lists_whole(api, namespace, unique):
    body = kube.widget(unique, namespace, color="red", parts=[{"name": "x", "count": 1}, {"name": "y"}])
    await kube.create(api, kube.widget_path(namespace), body)
    reply = await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"parts": [{"name": "z"}]}})
    assert reply.body["spec"]["parts"] == [{"name": "z"}]


async def test_a_merge_patch_with_a_stale_resource_version_is_409(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"size": 1}})
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"size": 2}}
    reply = await kube.merge_patch(api, kube.widget_path(namespace, unique), stale)
    assert reply.status == 409
    assert reply.body["reason"] == "Conflict"


async def test_json_patch_applies_operations_in_order(api, namespace, unique):
    await kube.create(
        api, kube.widget_path(namespace), kube.widget(unique, namespace, color="red", parts=[{"name": "x"}])
    )
    operations = [
        {"op": "replace", "path": "/spec/color", "value": "green"},
        {"op": "add", "path": "/spec/parts/-", "value": {"name": "y", "count": 2}},
        {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
        {"op": "test", "path": "/spec/color", "value": "green"},
    ]
    reply = await kube.request(
        api, "PATCH", kube.widget_path(namespace, unique), body=operations, content_type="application/json-patch+json"
    )
    assert reply.status == 200
    assert reply.body["spec"]["color"] == "green"
    assert reply.body["spec"]["parts"] == [{"name": "x"}, {"name": "y", "count": 2}]
    assert reply.body["metadata"]["labels"] == {"k": "v"}


async def test_a_json_patch_whose_test_fails_is_422_and_changes_nothing(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace, color="red"))
    operations = [
        {"op": "replace", "path": "/spec/color", "value": "blue"},
        {"op": "test", "path": "/spec/color", "value": "green"},
    ]
    reply = await kube.request(
        api, "PATCH", kube.widget_path(namespace, unique), body=operations, content_type="application/json-patch+json"
    )
    assert reply.status == 422
    assert reply.body["reason"] == "Invalid"
    assert (await kube.get(api, kube.widget_path(namespace, unique))).body == created


async def test_json_patch_removing_a_missing_path_is_422(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    operations = [{"op": "remove", "path": "/spec/nothing"}]
    reply = await kube.request(
        api, "PATCH", kube.widget_path(namespace, unique), body=operations, content_type="application/json-patch+json"
    )
    assert reply.status == 422


async def test_strategic_merge_patch_of_a_custom_resource_is_415(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    reply = await kube.request(
        api,
        "PATCH",
        kube.widget_path(namespace, unique),
        body={"spec": {"size": 1}},
        content_type="application/strategic-merge-patch+json",
    )
    assert reply.status == 415
    assert reply.body["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in reply.body["message"]


async def test_strategic_merge_patch_merges_finalizers_of_a_built_in_kind(api, namespace, unique):
    path = kube.resource_path("serviceaccounts", namespace, group="", version="v1")
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": unique, "finalizers": ["example.com/a"]}}
    await kube.create(api, path, body)
    reply = await kube.request(
        api,
        "PATCH",
        f"{path}/{unique}",
        body={"metadata": {"finalizers": ["example.com/b"]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert reply.status == 200
    # Checked against kube-apiserver v1.36.2: a merged list of primitives puts the patch's new items first.
    assert reply.body["metadata"]["finalizers"] == ["example.com/b", "example.com/a"]
    await kube.request(
        api,
        "PATCH",
        f"{path}/{unique}",
        body=[{"op": "remove", "path": "/metadata/finalizers"}],
        content_type="application/json-patch+json",
    )


async def test_patching_a_missing_object_is_404(api, namespace):
    reply = await kube.merge_patch(api, kube.widget_path(namespace, "missing"), {"spec": {"size": 1}})
    assert reply.status == 404


async def test_an_unknown_patch_content_type_is_415(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    reply = await kube.request(
        api, "PATCH", kube.widget_path(namespace, unique), body={"spec": {}}, content_type="application/json"
    )
    assert reply.status == 415
