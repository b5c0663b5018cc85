import copy
from datetime import UTC, datetime

import pytest

from shared.models import (
    BlockReason,
    ModelError,
    NotificationRequest,
    PipelineRun,
    RemediationPhase,
    RemediationRequest,
    WorkflowExecution,
    format_time,
)
from tests import factories


def full_remediation_request():
    obj = factories.remediation_request(parameters={"REPLICAS": "3"}, timeouts={"executing": "45m"})
    obj["metadata"].update(
        uid="0b7c1c9e-0000-4000-8000-000000000001",
        resourceVersion="42",
        generation=1,
        creationTimestamp="2026-11-22T10:00:00Z",
        labels={"team": "sre"},
        managedFields=[{"manager": "kubectl", "operation": "Update"}],
    )
    obj["spec"]["futureField"] = {"nested": [1, 2, 3]}
    obj["spec"]["targetResource"]["apiVersion"] = "apps/v1"
    obj["status"] = {
        "phase": "Blocked",
        "reason": "ConsecutiveFailures",
        "blockReason": "ConsecutiveFailures",
        "blockedUntil": "2026-11-22T11:00:00.25Z",
        "consecutiveFailureCount": 3,
        "notificationRequestRefs": [{"name": "nr-abc", "extra": "kept"}],
        "conditions": [
            {
                "type": "Blocked",
                "status": "True",
                "reason": "ConsecutiveFailures",
                "message": "3 failures",
                "lastTransitionTime": "2026-11-22T10:00:00Z",
                "observedGeneration": 1,
            }
        ],
        "somethingNewer": True,
    }
    return obj


def test_remediation_request_round_trip_loses_nothing_including_unknown_fields():
    original = full_remediation_request()
    assert RemediationRequest.from_k8s(copy.deepcopy(original)).to_k8s() == original


def test_workflow_execution_round_trip_loses_nothing():
    original = factories.workflow_execution(parameters={"A": "b"})
    original["status"] = {
        "phase": "Failed",
        "startTime": "2026-11-22T10:00:00Z",
        "duration": "1m3s",
        "pipelineRunRef": {"name": "wfe-0123456789abcdef", "namespace": "kubernaut-workflows"},
        "failureDetails": {"reason": "TaskFailed", "wasExecutionFailure": True, "exitCode": 1, "failedTaskName": "t"},
    }
    assert WorkflowExecution.from_k8s(copy.deepcopy(original)).to_k8s() == original


def test_pipeline_run_keeps_everything_tekton_writes():
    original = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "wfe-1", "namespace": "kubernaut-workflows"},
        "spec": {
            "pipelineRef": {"resolver": "bundles", "params": [{"name": "bundle", "value": "x"}]},
            "params": [{"name": "LIST", "value": ["a", "b"]}, {"name": "OBJ", "value": {"k": "v"}}],
            "taskRunTemplate": {"serviceAccountName": "runner", "podTemplate": {"nodeSelector": {"a": "b"}}},
        },
        "status": {
            "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "severity": ""}],
            "childReferences": [{"name": "tr-1", "kind": "TaskRun", "pipelineTaskName": "step"}],
            "provenance": {"featureFlags": {"enableApiFields": "beta"}},
        },
    }
    pipeline_run = PipelineRun.from_k8s(copy.deepcopy(original))
    assert pipeline_run.status.condition().reason == "Running"
    assert pipeline_run.to_k8s() == original


def test_notification_request_keeps_the_deliverers_status():
    original = {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "NotificationRequest",
        "metadata": {"name": "nr-1", "namespace": "default"},
        "spec": {
            "remediationRequestRef": {"name": "rr-1"},
            "type": "manual-review",
            "priority": "critical",
            "subject": "Manual review required",
            "channels": ["slack"],
            "metadata": {"target": "default/deployment/web"},
        },
        "status": {"phase": "Sent", "attempts": [{"channel": "slack"}]},
    }
    assert NotificationRequest.from_k8s(copy.deepcopy(original)).to_k8s() == original


def test_parsed_fields_are_typed():
    rr = RemediationRequest.from_k8s(full_remediation_request())
    assert rr.status.phase is RemediationPhase.BLOCKED
    assert rr.status.block_reason is BlockReason.CONSECUTIVE_FAILURES
    assert rr.status.blocked_until == datetime(2026, 11, 22, 11, 0, 0, 250000, tzinfo=UTC)
    assert rr.spec.target_resource.canonical == "default/deployment/web"
    assert rr.key == "default/rr-1"


def test_list_items_without_type_meta_are_accepted():
    obj = factories.remediation_request()
    del obj["apiVersion"], obj["kind"]
    assert RemediationRequest.from_k8s(obj).to_k8s()["kind"] == "RemediationRequest"


@pytest.mark.parametrize(
    ("mutate", "path", "value"),
    [
        (lambda o: o["spec"].update(signalFingerprint="ABC"), "spec.signalFingerprint", "'ABC'"),
        (lambda o: o["spec"].update(signalFingerprint="g" * 64), "spec.signalFingerprint", "'gggg"),
        (lambda o: o["spec"].pop("signalName"), "spec.signalName", "required"),
        (lambda o: o["spec"].update(signalName="x" * 254), "spec.signalName", "xxxx"),
        (lambda o: o["spec"].update(severity=""), "spec.severity", "''"),
        (lambda o: o["spec"]["workflowRef"].pop("executionBundle"), "spec.workflowRef.executionBundle", "required"),
        (lambda o: o["spec"]["targetResource"].update(kind=""), "spec.targetResource.kind", "''"),
        (lambda o: o["spec"].update(timeouts={"executing": "soon"}), "spec.timeouts.executing", "'soon'"),
        (lambda o: o.update(status={"phase": "Sleeping"}), "status.phase", "'Sleeping'"),
        (lambda o: o.update(status={"blockReason": "Bored"}), "status.blockReason", "'Bored'"),
        (lambda o: o.update(status={"duplicateCount": -1}), "status.duplicateCount", "-1"),
        (lambda o: o.update(status={"blockedUntil": "tomorrow"}), "status.blockedUntil", "'tomorrow'"),
        (lambda o: o.update(status={"duplicateCount": "2"}), "status.duplicateCount", "'2'"),
        (lambda o: o.update(status={"requiresManualReview": "yes"}), "status.requiresManualReview", "'yes'"),
        (
            lambda o: o.update(status={"blockedUntil": "2026-01-02T03:04:05"}),
            "status.blockedUntil",
            "with a zone",
        ),
        (
            lambda o: o.update(status={"conditions": [{"type": "Routed", "status": "Maybe"}]}),
            "status.conditions.0.status",
            "'Maybe'",
        ),
    ],
)
def test_parse_error_names_the_field_path_and_the_bad_value(mutate, path, value):
    obj = factories.remediation_request(name="bad", namespace="team-a")
    mutate(obj)
    with pytest.raises(ModelError) as caught:
        RemediationRequest.from_k8s(obj)
    message = str(caught.value)
    assert message.startswith("RemediationRequest team-a/bad: ")
    assert path in message
    assert value in message


def test_workflow_execution_status_has_no_routing_fields():
    fields = set(WorkflowExecution.model_fields["status"].annotation.__args__[0].model_fields)
    assert not {"consecutive_failures", "consecutive_failure_count", "next_allowed_execution"} & fields


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2026-01-02T03:04:05.12Z"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05Z"),
    ],
)
def test_times_are_written_as_rfc3339_utc(value, text):
    assert format_time(value) == text
