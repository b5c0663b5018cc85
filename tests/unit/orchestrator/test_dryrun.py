"""Dry run (SPEC 4.8): who is one, and what the message says would have run."""

from __future__ import annotations

import pytest

from orchestrator.dryrun import DRY_RUN_ANNOTATION, is_dry_run, would_run
from shared.models import RemediationRequest
from tests import factories


def rr(namespace="team-a", annotation: str | None = None, **options) -> RemediationRequest:
    obj = factories.remediation_request("rr-1", namespace, **options)
    if annotation is not None:
        obj["metadata"]["annotations"] = {DRY_RUN_ANNOTATION: annotation}
    return RemediationRequest.from_k8s(obj)


@pytest.mark.parametrize(
    ("everywhere", "namespaces", "annotation", "dry"),
    [
        (False, frozenset(), None, False),
        (True, frozenset(), None, True),
        (False, frozenset({"team-a"}), None, True),
        (False, frozenset({"team-b"}), None, False),
        (False, frozenset(), "true", True),
        (True, frozenset(), "false", True),  # an annotation never turns the settings off
        (False, frozenset({"team-a"}), "false", True),
        (False, frozenset(), "false", False),
        (False, frozenset(), "", False),
        (False, frozenset(), "yes", False),  # only "true" asks for it
    ],
)
def test_dry_run_is_on_by_setting_namespace_or_annotation_and_never_turned_off_by_one(
    everywhere, namespaces, annotation, dry
):
    assert is_dry_run(rr(annotation=annotation), everywhere=everywhere, namespaces=namespaces) is dry


def test_the_message_names_workflow_bundle_parameters_and_target():
    message = would_run(rr(parameters={"b": "2", "a": "1"}, workflow_id="restart-pods"))
    assert "workflow restart-pods" in message
    assert "registry.example.com/workflows/restart-pods:v1" in message
    assert '{"a":"1","b":"2"}' in message
    assert "default/deployment/web" in message


def test_huge_parameters_are_cut_so_the_message_fits_the_status():
    message = would_run(rr(parameters={f"p{i}": "x" * 8192 for i in range(64)}))
    assert len(message) < 32768
    assert "characters in all" in message
