from datetime import UTC, datetime, timedelta

import pytest

from shared.models.conditions import set_condition
from shared.validation import bundle_reference_problems, parameter_problems, service_account_problems


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
