"""Create and read: system fields, generateName, AlreadyExists, NotFound, namespaces that must exist.

https://kubernetes.io/docs/reference/using-api/api-concepts/
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/
"""

from __future__ import annotations

import re

from tests import factories
from tests.contract import kube


async def test_create_answers_201_with_uid_creation_timestamp_resource_version_and_generation_1(api, namespace, unique):
    reply = await kube.request(
        api, "POST", kube.rr_path(namespace), body=factories.remediation_request(unique, namespace)
    )
    meta = reply.body["metadata"]
    assert reply.status == 201
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["resourceVersion"]
    assert meta["generation"] == 1
    assert reply.body["apiVersion"] == "kubernaut.ai/v1alpha1"
    assert reply.body["kind"] == "RemediationRequest"


async def test_get_returns_what_create_returned(api, namespace, unique):
    created = await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    reply = await kube.get(api, kube.rr_path(namespace, unique))
    assert reply.status == 200
    assert reply.body == created


async def test_generate_name_appends_five_random_characters(api, namespace):
    body = factories.remediation_request(namespace=namespace)
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "gen-"
    first = await kube.create(api, kube.rr_path(namespace), body)
    second = await kube.create(api, kube.rr_path(namespace), body)
    assert re.fullmatch(r"gen-[a-z0-9]{5}", first["metadata"]["name"])
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["generateName"] == "gen-"


async def test_creating_an_existing_name_is_409_already_exists(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    await kube.create(api, kube.rr_path(namespace), body)
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body=body)
    assert reply.status == 409
    assert reply.body["reason"] == "AlreadyExists"
    assert reply.body["message"] == f'remediationrequests.kubernaut.ai "{unique}" already exists'
    assert reply.body["details"] == {"name": unique, "group": "kubernaut.ai", "kind": "remediationrequests"}


async def test_getting_a_missing_object_is_404_not_found(api, namespace):
    reply = await kube.get(api, kube.rr_path(namespace, "missing"))
    assert reply.status == 404
    assert reply.body["reason"] == "NotFound"
    assert reply.body["message"] == 'remediationrequests.kubernaut.ai "missing" not found'


async def test_creating_in_a_namespace_that_does_not_exist_is_404_for_the_namespace(api, unique):
    reply = await kube.request(api, "POST", kube.rr_path(unique), body=factories.remediation_request("x", unique))
    assert reply.status == 404
    assert reply.body["reason"] == "NotFound"
    assert reply.body["message"] == f'namespaces "{unique}" not found'
    assert reply.body["details"] == {"name": unique, "kind": "namespaces"}


async def test_an_object_whose_namespace_differs_from_the_path_is_400(api, namespace, unique):
    body = factories.remediation_request(unique, "other-namespace")
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body=body)
    assert reply.status == 400
    assert reply.body["reason"] == "BadRequest"
    assert "does not match the namespace" in reply.body["message"]


async def test_a_name_that_is_not_a_dns_subdomain_is_422(api, namespace):
    reply = await kube.request(
        api, "POST", kube.rr_path(namespace), body=factories.remediation_request("Not_Valid", namespace)
    )
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123 subdomain" in reply.body["details"]["causes"][0]["message"]


async def test_neither_name_nor_generate_name_is_422_required(api, namespace):
    body = factories.remediation_request(namespace=namespace)
    del body["metadata"]["name"]
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body=body)
    assert reply.status == 422
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value: name or generateName is required",
        "field": "metadata.name",
    } in reply.body["details"]["causes"]


async def test_a_resource_version_on_create_is_refused(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["metadata"]["resourceVersion"] = "12345"
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body=body)
    assert reply.status == 500
    assert reply.body["message"] == "resourceVersion should not be set on objects to be created"


async def test_uid_and_creation_timestamp_sent_on_create_are_replaced(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    body["metadata"]["creationTimestamp"] = "2001-01-01T00:00:00Z"
    created = await kube.create(api, kube.rr_path(namespace), body)
    assert created["metadata"]["uid"] != "00000000-0000-0000-0000-000000000000"
    assert created["metadata"]["creationTimestamp"] != "2001-01-01T00:00:00Z"


async def test_put_of_a_missing_custom_resource_is_404_not_a_create(api, namespace, unique):
    reply = await kube.request(
        api, "PUT", kube.rr_path(namespace, unique), body=factories.remediation_request(unique, namespace)
    )
    assert reply.status == 404


async def test_a_namespace_gets_the_metadata_name_label_the_kubernetes_finalizer_and_phase_active(api, unique):
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": unique}}
    created = await kube.create(api, "/api/v1/namespaces", body)
    try:
        assert created["metadata"]["labels"]["kubernetes.io/metadata.name"] == unique
        assert created["spec"]["finalizers"] == ["kubernetes"]
        assert created["status"]["phase"] == "Active"
    finally:
        await kube.request(api, "DELETE", f"/api/v1/namespaces/{unique}")


async def test_the_default_namespace_may_not_be_deleted(api):
    reply = await kube.request(api, "DELETE", "/api/v1/namespaces/default")
    assert reply.status == 403
    assert reply.body["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


async def test_metadata_is_decoded_as_object_meta_nulls_empty_values_and_unknown_fields_vanish(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["metadata"].update(labels={}, annotations=None, finalizers=[], somethingElse="x")
    created = await kube.create(api, kube.rr_path(namespace), body)
    assert not {"labels", "annotations", "finalizers", "somethingElse"} & set(created["metadata"])
