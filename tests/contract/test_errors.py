"""Errors are Status objects: kind, apiVersion, status Failure, message, reason, details and code.

https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
"""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests import factories
from tests.contract import kube


def assert_status(reply: kube.Reply, code: int, reason: str) -> None:
    assert reply.status == code
    assert reply.body["kind"] == "Status"
    assert reply.body["apiVersion"] == "v1"
    assert reply.body["status"] == "Failure"
    assert reply.body["code"] == code
    assert reply.body["reason"] == reason
    assert isinstance(reply.body["message"], str)
    assert reply.body["message"]


async def test_not_found_is_a_status_with_the_resource_and_name_in_details(api, namespace):
    reply = await kube.get(api, kube.rr_path(namespace, "nothing-here"))
    assert_status(reply, 404, "NotFound")
    assert reply.body["details"] == {"name": "nothing-here", "group": "kubernaut.ai", "kind": "remediationrequests"}


async def test_not_found_of_a_core_resource_has_no_group(api, namespace):
    reply = await kube.get(
        api, kube.resource_path("serviceaccounts", namespace, "nothing-here", group="", version="v1")
    )
    assert_status(reply, 404, "NotFound")
    assert reply.body["message"] == 'serviceaccounts "nothing-here" not found'
    assert reply.body["details"] == {"name": "nothing-here", "kind": "serviceaccounts"}


async def test_an_unknown_resource_type_is_404(api, namespace):
    reply = await kube.get(api, kube.resource_path("gizmos", namespace, group="kubernaut.ai"))
    assert reply.status == 404


async def test_a_body_that_is_not_a_json_object_is_400(api, namespace):
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body="not an object")
    assert_status(reply, 400, "BadRequest")


async def test_an_invalid_object_lists_every_cause(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalFingerprint"] = "bad"
    del body["spec"]["targetResource"]
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body=body)
    assert_status(reply, 422, "Invalid")
    fields = [cause["field"] for cause in reply.body["details"]["causes"]]
    assert "spec.signalFingerprint" in fields
    assert "spec.targetResource" in fields
    assert reply.body["message"].startswith(f'RemediationRequest.kubernaut.ai "{unique}" is invalid: [')


async def test_the_preloading_client_raises_api_exception_with_the_status_body(api, namespace):
    objects = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as raised:
        await objects.get_namespaced_custom_object("kubernaut.ai", "v1alpha1", namespace, "remediationrequests", "none")
    assert raised.value.status == 404
    assert '"reason":"NotFound"' in raised.value.body.replace(" ", "")


async def test_the_raw_client_path_returns_error_responses_without_raising(api, namespace):
    response = await api.call_api(
        kube.rr_path(namespace, "none"), "GET", auth_settings=["BearerToken"], _preload_content=False
    )
    assert response.status == 404
    status = await response.json()
    response.release()
    assert status["reason"] == "NotFound"
