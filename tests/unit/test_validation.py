from datetime import UTC, datetime, timedelta

import pytest

from shared.models.conditions import set_condition
from shared.validation import (
    bundle_reference_problems,
    duration_problems,
    parameter_problems,
    service_account_problems,
)


@pytest.mark.parametrize(
    "reference",
    [
        "registry.example.com/workflows/restart-pods:v1",
        "ghcr.io/org/repo/bundle@sha256:" + "a" * 64,
        "localhost:5000/wf:1.0.0",
        "quay.io/kubernaut/restart_pods:latest",
    ],
)
def test_valid_bundle_references_pass(reference):
    assert bundle_reference_problems("spec.workflowRef.executionBundle", reference) == []


@pytest.mark.parametrize(
    "reference", ["", "   ", None, "not a reference", "UPPER/case:v1", "registry/x:tag with space"]
)
def test_invalid_bundle_references_name_the_field(reference):
    problems = bundle_reference_problems("spec.workflowRef.executionBundle", reference)
    assert problems and problems[0].startswith("spec.workflowRef.executionBundle: ")


def test_parameter_names_follow_tekton_and_target_resource_is_reserved():
    assert parameter_problems("spec.parameters", {"REPLICAS": "3", "dry.run": "x", "_a-b": "y"}) == []
    problems = parameter_problems("spec.parameters", {"TARGET_RESOURCE": "x", "1bad": "y", "has space": "z"})
    assert [p.split(":")[0] for p in problems] == [
        "spec.parameters.TARGET_RESOURCE",
        "spec.parameters.1bad",
        "spec.parameters.has space",
    ]


def test_service_account_names_must_be_dns_subdomains():
    assert service_account_problems("f", None) == []
    assert service_account_problems("f", "runner") == []
    assert service_account_problems("f", "Runner_1")


def test_set_condition_moves_the_transition_time_only_when_the_status_changes():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    conditions = set_condition(None, "Blocked", "True", "ResourceBusy", "busy", t0, 1)
    conditions = set_condition(
        conditions, "Blocked", "True", "RecentlyRemediated", "cooldown", t0 + timedelta(seconds=5)
    )
    assert conditions[0].last_transition_time == t0
    assert conditions[0].reason == "RecentlyRemediated"
    conditions = set_condition(conditions, "Blocked", "False", "Unblocked", "free", t0 + timedelta(seconds=9))
    assert conditions[0].last_transition_time == t0 + timedelta(seconds=9)
    conditions = set_condition(conditions, "Routed", "True", "Executing", "", t0)
    assert [c.type for c in conditions] == ["Blocked", "Routed"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9999999999999h", "out of range"),
        ("99999999h", "out of range"),
        ("0s", "must be longer than zero"),
        ("5 minutes", "invalid duration"),
    ],
)
def test_duration_problems_name_the_field_and_never_raise(text, problem):
    (found,) = duration_problems("spec.timeouts.executing", text)
    assert found.startswith("spec.timeouts.executing: ") and problem in found


def test_a_workflow_execution_with_a_huge_timeout_is_a_configuration_problem_for_the_executor():
    """Issue 17.4: the executor's validation made the same call and raised OverflowError."""
    from executor.validation import spec_problems
    from shared.models import WorkflowExecution
    from tests import factories

    wfe = WorkflowExecution.from_k8s(factories.workflow_execution(executionConfig={"timeout": "9999999999999h"}))
    (problem,) = spec_problems(wfe)
    assert problem.startswith("spec.executionConfig.timeout: ")
