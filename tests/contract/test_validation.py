"""Schema validation of our CRDs: 422 Invalid with a cause per problem, worded as apiextensions-apiserver words it.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning
https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind
"""

from __future__ import annotations

import pytest

from tests import factories
from tests.contract import kube

PHASES = '"Pending", "Blocked", "Executing", "Completed", "Failed", "TimedOut", "Skipped"'


async def invalid(api, namespace, body) -> kube.Reply:
    reply = await kube.request(api, "POST", kube.rr_path(namespace), body=body)
    assert reply.status == 422, reply.body
    assert reply.body["kind"] == "Status"
    assert reply.body["status"] == "Failure"
    assert reply.body["reason"] == "Invalid"
    assert reply.body["code"] == 422
    return reply


async def test_a_fingerprint_that_is_not_64_hex_characters_is_invalid_with_the_pattern_in_the_message(
    api, namespace, unique
):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalFingerprint"] = "not-hex"
    reply = await invalid(api, namespace, body)
    detail = "spec.signalFingerprint in body should match '^[a-f0-9]{64}$'"
    assert reply.body["message"] == (
        f'RemediationRequest.kubernaut.ai "{unique}" is invalid: '
        f'spec.signalFingerprint: Invalid value: "not-hex": {detail}'
    )
    assert reply.body["details"] == {
        "name": unique,
        "group": "kubernaut.ai",
        "kind": "RemediationRequest",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": f'Invalid value: "not-hex": {detail}',
                "field": "spec.signalFingerprint",
            }
        ],
    }


async def test_a_missing_required_field_is_field_value_required(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    del body["spec"]["signalName"]
    del body["spec"]["workflowRef"]["executionBundle"]
    causes = (await invalid(api, namespace, body)).body["details"]["causes"]
    assert {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.signalName"} in causes
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.workflowRef.executionBundle",
    } in causes


async def test_a_null_required_field_counts_as_missing(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalName"] = None
    causes = (await invalid(api, namespace, body)).body["details"]["causes"]
    assert {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.signalName"} in causes


async def test_a_string_over_max_length_is_field_value_too_long(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalName"] = "x" * 254
    causes = (await invalid(api, namespace, body)).body["details"]["causes"]
    too_long = [cause for cause in causes if cause["field"] == "spec.signalName"]
    assert too_long[0]["reason"] == "FieldValueTooLong"
    assert too_long[0]["message"].startswith("Too long: may not be")
    assert "253" in too_long[0]["message"]


async def test_a_string_under_min_length_is_invalid(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["workflowRef"]["workflowId"] = ""
    causes = (await invalid(api, namespace, body)).body["details"]["causes"]
    assert {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "": spec.workflowRef.workflowId in body should be at least 1 chars long',
        "field": "spec.workflowRef.workflowId",
    } in causes


async def test_a_wrong_type_is_field_value_type_invalid(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalName"] = 42
    causes = (await invalid(api, namespace, body)).body["details"]["causes"]
    assert {
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "integer": spec.signalName in body must be of type string: "integer"',
        "field": "spec.signalName",
    } in causes


async def test_too_many_parameters_is_field_value_too_many(api, namespace, unique):
    body = factories.remediation_request(unique, namespace, parameters={f"P{i}": "v" for i in range(65)})
    causes = (await invalid(api, namespace, body)).body["details"]["causes"]
    assert {
        "reason": "FieldValueTooMany",
        "message": "Too many: 65: must have at most 64 items",
        "field": "spec.parameters",
    } in causes


async def test_unknown_fields_are_pruned_silently(api, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["unknownField"] = "dropped"
    body["spec"]["targetResource"]["extra"] = {"nested": True}
    body["metadata"]["unknownMeta"] = "dropped"
    created = await kube.create(api, kube.rr_path(namespace), body)
    assert "unknownField" not in created["spec"]
    assert "extra" not in created["spec"]["targetResource"]
    assert "unknownMeta" not in created["metadata"]


async def test_preserved_unknown_fields_are_kept(api, namespace, unique):
    path = kube.resource_path("pipelineruns", namespace, group="tekton.dev", version="v1")
    body = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": unique},
        "spec": {"pipelineRef": {"resolver": "bundles"}, "anything": {"goes": [1, 2]}},
    }
    created = await kube.create(api, path, body)
    assert created["spec"] == body["spec"]


async def test_the_spec_cannot_change_after_creation(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    reply = await kube.merge_patch(api, kube.rr_path(namespace, unique), {"spec": {"signalName": "Other"}})
    assert reply.status == 422
    causes = reply.body["details"]["causes"]
    assert [cause["field"] for cause in causes] == ["spec"]
    assert causes[0]["reason"] == "FieldValueInvalid"
    assert causes[0]["message"].endswith("spec is immutable after creation")


async def test_labels_of_an_immutable_spec_object_can_still_change(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    reply = await kube.merge_patch(api, kube.rr_path(namespace, unique), {"metadata": {"labels": {"a": "b"}}})
    assert reply.status == 200


async def test_the_status_subresource_validates_the_status(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    reply = await kube.merge_patch(api, kube.rr_path(namespace, unique, "status"), {"status": {"phase": "Nope"}})
    assert reply.status == 422
    assert {
        "reason": "FieldValueNotSupported",
        "message": f'Unsupported value: "Nope": supported values: {PHASES}',
        "field": "status.phase",
    } in reply.body["details"]["causes"]


async def test_a_status_timestamp_must_be_a_date_time(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    reply = await kube.merge_patch(
        api, kube.rr_path(namespace, unique, "status"), {"status": {"startTime": "yesterday"}}
    )
    assert reply.status == 422
    cause = reply.body["details"]["causes"][0]
    assert cause["field"] == "status.startTime"
    assert cause["reason"] == "FieldValueTypeInvalid"
    assert "must be of type date-time" in cause["message"]


async def test_a_negative_observed_generation_is_below_the_minimum(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    reply = await kube.merge_patch(
        api, kube.rr_path(namespace, unique, "status"), {"status": {"observedGeneration": -1}}
    )
    assert reply.status == 422
    cause = reply.body["details"]["causes"][0]
    assert cause["field"] == "status.observedGeneration"
    assert cause["message"].startswith("Invalid value: -1: ")
    assert cause["message"].endswith("should be greater than or equal to 0")


async def test_conditions_are_a_map_keyed_by_type(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    condition = {
        "type": "Routed",
        "status": "True",
        "reason": "R",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    reply = await kube.merge_patch(
        api, kube.rr_path(namespace, unique, "status"), {"status": {"conditions": [condition, condition]}}
    )
    assert reply.status == 422
    cause = reply.body["details"]["causes"][0]
    assert cause == {
        "reason": "FieldValueDuplicate",
        "message": 'Duplicate value: {"type":"Routed"}',
        "field": "status.conditions[1]",
    }


async def test_a_valid_status_is_stored(api, namespace, unique):
    await kube.create(api, kube.rr_path(namespace), factories.remediation_request(unique, namespace))
    status = {
        "phase": "Blocked",
        "blockReason": "ResourceBusy",
        "startTime": "2026-01-01T00:00:00.25Z",
        "observedGeneration": 1,
    }
    reply = await kube.merge_patch(api, kube.rr_path(namespace, unique, "status"), {"status": status})
    assert reply.status == 200
    assert reply.body["status"] == status


@pytest.mark.sandbox_only
async def test_with_validation_off_schema_breaking_objects_are_stored_as_sent(api, sandbox, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalFingerprint"] = "NOT-A-FINGERPRINT"
    body["spec"]["unknownField"] = "kept"
    sandbox.admin.set_validation(False)
    try:
        created = await kube.create(api, kube.rr_path(namespace), body)
    finally:
        sandbox.admin.set_validation(True)
    assert created["spec"]["signalFingerprint"] == "NOT-A-FINGERPRINT"
    assert created["spec"]["unknownField"] == "kept"


@pytest.mark.sandbox_only
async def test_an_invalid_stored_object_can_be_changed_where_it_is_valid(api, sandbox, namespace, unique):
    body = factories.remediation_request(unique, namespace)
    body["spec"]["signalFingerprint"] = "NOT-A-FINGERPRINT"
    sandbox.admin.set_validation(False)
    try:
        await kube.create(api, kube.rr_path(namespace), body)
    finally:
        sandbox.admin.set_validation(True)
    relabelled = await kube.merge_patch(api, kube.rr_path(namespace, unique), {"metadata": {"labels": {"a": "b"}}})
    status = await kube.merge_patch(api, kube.rr_path(namespace, unique, "status"), {"status": {"phase": "Failed"}})
    assert relabelled.status == 200  # unchanged parts are not validated again (validation ratcheting)
    assert status.status == 200
