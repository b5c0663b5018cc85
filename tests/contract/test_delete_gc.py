"""Deletion: preconditions, finalizers and deletionTimestamp, garbage collection, namespace termination.

https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
https://kubernetes.io/docs/concepts/architecture/garbage-collection/
https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/
https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace
"""

from __future__ import annotations

from typing import Any

from tests.contract import kube

FINALIZER = "contract.kubernaut.ai/hold"


def owned_by(owner: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            **extra,
        }
    ]


async def gone(api, path: str) -> bool:
    return (await kube.get(api, path)).status == 404


async def test_deleting_an_object_without_finalizers_removes_it_and_answers_a_success_status(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    reply = await kube.request(api, "DELETE", kube.widget_path(namespace, unique))
    assert reply.status == 200
    assert reply.body["kind"] == "Status"
    assert reply.body["status"] == "Success"
    assert reply.body["details"] == {
        "name": unique,
        "group": "contract.kubernaut.ai",
        "kind": "widgets",
        "uid": created["metadata"]["uid"],
    }
    assert await gone(api, kube.widget_path(namespace, unique))


async def test_deleting_a_missing_object_is_404(api, namespace):
    reply = await kube.request(api, "DELETE", kube.widget_path(namespace, "missing"))
    assert reply.status == 404
    assert reply.body["reason"] == "NotFound"


async def test_a_uid_precondition_that_does_not_match_is_409_and_keeps_the_object(api, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    options = {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"},
    }
    reply = await kube.request(api, "DELETE", kube.widget_path(namespace, unique), body=options)
    assert reply.status == 409
    assert reply.body["reason"] == "Conflict"
    assert "the UID in the precondition (00000000-0000-0000-0000-000000000000) does not match" in reply.body["message"]
    assert not await gone(api, kube.widget_path(namespace, unique))


async def test_a_resource_version_precondition_that_does_not_match_is_409(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"size": 1}})
    options = {"preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    reply = await kube.request(api, "DELETE", kube.widget_path(namespace, unique), body=options)
    assert reply.status == 409
    assert "the ResourceVersion in the precondition" in reply.body["message"]


async def test_matching_preconditions_let_the_delete_through(api, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    meta = created["metadata"]
    options = {"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
    reply = await kube.request(api, "DELETE", kube.widget_path(namespace, unique), body=options)
    assert reply.status == 200


async def test_a_finalizer_keeps_the_object_with_a_deletion_timestamp_and_a_new_generation(api, namespace, unique):
    body = kube.widget(unique, namespace)
    body["metadata"]["finalizers"] = [FINALIZER]
    await kube.create(api, kube.widget_path(namespace), body)
    reply = await kube.request(api, "DELETE", kube.widget_path(namespace, unique))
    assert reply.status == 200
    assert reply.body["kind"] == "Widget"
    assert reply.body["metadata"]["deletionTimestamp"]
    assert reply.body["metadata"]["deletionGracePeriodSeconds"] == 0
    assert reply.body["metadata"]["generation"] == 2
    stored = await kube.get(api, kube.widget_path(namespace, unique))
    assert stored.body["metadata"]["deletionTimestamp"] == reply.body["metadata"]["deletionTimestamp"]
    again = await kube.request(api, "DELETE", kube.widget_path(namespace, unique))
    assert again.body["metadata"]["resourceVersion"] == reply.body["metadata"]["resourceVersion"]
    await kube.merge_patch(api, kube.widget_path(namespace, unique), {"metadata": {"finalizers": None}})


async def test_removing_the_last_finalizer_removes_the_object(api, namespace, unique):
    body = kube.widget(unique, namespace)
    body["metadata"]["finalizers"] = [FINALIZER]
    await kube.create(api, kube.widget_path(namespace), body)
    await kube.request(api, "DELETE", kube.widget_path(namespace, unique))
    reply = await kube.merge_patch(api, kube.widget_path(namespace, unique), {"metadata": {"finalizers": []}})
    assert reply.status == 200
    assert await gone(api, kube.widget_path(namespace, unique))


async def test_no_finalizer_can_be_added_once_deletion_started(api, namespace, unique):
    body = kube.widget(unique, namespace)
    body["metadata"]["finalizers"] = [FINALIZER]
    await kube.create(api, kube.widget_path(namespace), body)
    await kube.request(api, "DELETE", kube.widget_path(namespace, unique))
    reply = await kube.merge_patch(
        api,
        kube.widget_path(namespace, unique),
        {"metadata": {"finalizers": [FINALIZER, "contract.kubernaut.ai/more"]}},
    )
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "metadata.finalizers"
    assert reply.body["details"]["causes"][0]["reason"] == "FieldValueForbidden"
    await kube.merge_patch(api, kube.widget_path(namespace, unique), {"metadata": {"finalizers": None}})


async def test_dependents_of_a_deleted_owner_are_garbage_collected(api, namespace, unique):
    owner = await kube.create(api, kube.widget_path(namespace), kube.widget(f"{unique}-owner", namespace))
    dependent = kube.widget(f"{unique}-dep", namespace)
    dependent["metadata"]["ownerReferences"] = owned_by(owner, controller=True)
    await kube.create(api, kube.widget_path(namespace), dependent)
    await kube.request(api, "DELETE", kube.widget_path(namespace, f"{unique}-owner"))
    await kube.eventually(lambda: gone(api, kube.widget_path(namespace, f"{unique}-dep")), timeout=60)


async def test_a_dependent_with_another_living_owner_only_loses_the_dead_reference(api, namespace, unique):
    first = await kube.create(api, kube.widget_path(namespace), kube.widget(f"{unique}-a", namespace))
    second = await kube.create(api, kube.widget_path(namespace), kube.widget(f"{unique}-b", namespace))
    dependent = kube.widget(f"{unique}-dep", namespace)
    dependent["metadata"]["ownerReferences"] = owned_by(first) + owned_by(second)
    await kube.create(api, kube.widget_path(namespace), dependent)
    await kube.request(api, "DELETE", kube.widget_path(namespace, f"{unique}-a"))

    async def one_owner_left() -> bool:
        reply = await kube.get(api, kube.widget_path(namespace, f"{unique}-dep"))
        refs = reply.body["metadata"].get("ownerReferences", [])
        return [ref["name"] for ref in refs] == [f"{unique}-b"]

    await kube.eventually(one_owner_left, timeout=60)


async def test_orphan_propagation_keeps_the_dependents_without_the_reference(api, namespace, unique):
    owner = await kube.create(api, kube.widget_path(namespace), kube.widget(f"{unique}-owner", namespace))
    dependent = kube.widget(f"{unique}-dep", namespace)
    dependent["metadata"]["ownerReferences"] = owned_by(owner)
    await kube.create(api, kube.widget_path(namespace), dependent)
    reply = await kube.request(
        api, "DELETE", kube.widget_path(namespace, f"{unique}-owner"), body={"propagationPolicy": "Orphan"}
    )
    assert reply.status == 200
    await kube.eventually(lambda: gone(api, kube.widget_path(namespace, f"{unique}-owner")), timeout=60)
    kept = await kube.get(api, kube.widget_path(namespace, f"{unique}-dep"))
    assert kept.status == 200
    assert "ownerReferences" not in kept.body["metadata"]


async def test_foreground_propagation_deletes_blocking_dependents_before_the_owner(api, namespace, unique):
    owner = await kube.create(api, kube.widget_path(namespace), kube.widget(f"{unique}-owner", namespace))
    dependent = kube.widget(f"{unique}-dep", namespace)
    dependent["metadata"]["ownerReferences"] = owned_by(owner, blockOwnerDeletion=True)
    dependent["metadata"]["finalizers"] = [FINALIZER]
    await kube.create(api, kube.widget_path(namespace), dependent)
    reply = await kube.request(
        api, "DELETE", kube.widget_path(namespace, f"{unique}-owner"), body={"propagationPolicy": "Foreground"}
    )
    assert "foregroundDeletion" in reply.body["metadata"]["finalizers"]

    async def dependent_deleting() -> bool:
        body = (await kube.get(api, kube.widget_path(namespace, f"{unique}-dep"))).body
        return bool(body["metadata"].get("deletionTimestamp"))

    await kube.eventually(dependent_deleting, timeout=60)
    assert not await gone(api, kube.widget_path(namespace, f"{unique}-owner"))
    await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-dep"), {"metadata": {"finalizers": None}})
    await kube.eventually(lambda: gone(api, kube.widget_path(namespace, f"{unique}-owner")), timeout=60)


async def test_a_deleted_namespace_terminates_refuses_new_content_and_goes_once_empty(api, unique):
    await kube.create(
        api, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": unique}}
    )
    held = kube.widget("held", unique)
    held["metadata"]["finalizers"] = [FINALIZER]
    await kube.create(api, kube.widget_path(unique), held)
    await kube.create(api, kube.widget_path(unique), kube.widget("plain", unique))
    reply = await kube.request(api, "DELETE", f"/api/v1/namespaces/{unique}")
    assert reply.status == 200
    assert reply.body["status"]["phase"] == "Terminating"
    await kube.eventually(lambda: gone(api, kube.widget_path(unique, "plain")), timeout=60)

    async def held_deleting() -> bool:
        return bool((await kube.get(api, kube.widget_path(unique, "held"))).body["metadata"].get("deletionTimestamp"))

    await kube.eventually(held_deleting, timeout=60)
    refused = await kube.request(api, "POST", kube.widget_path(unique), body=kube.widget("late", unique))
    assert refused.status == 403
    assert refused.body["reason"] == "Forbidden"
    assert refused.body["message"] == (
        f'widgets.contract.kubernaut.ai "late" is forbidden: unable to create new content in namespace {unique} '
        "because it is being terminated"
    )
    await kube.merge_patch(api, kube.widget_path(unique, "held"), {"metadata": {"finalizers": None}})
    await kube.eventually(lambda: gone(api, f"/api/v1/namespaces/{unique}"), timeout=120)


async def test_deletecollection_deletes_what_the_selector_selects(api, namespace, unique):
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        body = kube.widget(f"{unique}-{name}", namespace)
        body["metadata"]["labels"] = {"run": unique, "team": team}
        await kube.create(api, kube.widget_path(namespace), body)
    reply = await kube.request(
        api, "DELETE", kube.widget_path(namespace), query={"labelSelector": f"run={unique},team=x"}
    )
    assert reply.status == 200
    left = await kube.request(api, "GET", kube.widget_path(namespace), query={"labelSelector": f"run={unique}"})
    assert [item["metadata"]["name"] for item in left.body["items"]] == [f"{unique}-c"]
