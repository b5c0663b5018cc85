"""Builders of valid objects for tests: one place that knows what a minimal valid object looks like."""

from __future__ import annotations

import hashlib
from typing import Any


def fingerprint(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def remediation_request(
    name: str = "rr-1",
    namespace: str = "default",
    *,
    signal: str = "HighMemory",
    target: tuple[str, str, str | None] = ("Deployment", "web", "default"),
    workflow_id: str = "restart-pods",
    bundle: str = "registry.example.com/workflows/restart-pods:v1",
    parameters: dict[str, str] | None = None,
    fingerprint_seed: str | None = None,
    **spec_extra: Any,
) -> dict[str, Any]:
    kind, target_name, target_ns = target
    target_resource: dict[str, Any] = {"kind": kind, "name": target_name}
    if target_ns:
        target_resource["namespace"] = target_ns
    spec: dict[str, Any] = {
        "signalFingerprint": fingerprint(fingerprint_seed or f"{signal}/{kind}/{target_name}"),
        "signalName": signal,
        "severity": "critical",
        "targetResource": target_resource,
        "workflowRef": {"workflowId": workflow_id, "executionBundle": bundle},
        **spec_extra,
    }
    if parameters is not None:
        spec["parameters"] = parameters
    return {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "RemediationRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def workflow_execution(
    name: str = "wfe-1",
    namespace: str = "default",
    *,
    rr_name: str = "rr-1",
    target: str = "default/deployment/web",
    workflow_id: str = "restart-pods",
    bundle: str = "registry.example.com/workflows/restart-pods:v1",
    parameters: dict[str, str] | None = None,
    **spec_extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "remediationRequestRef": {"kind": "RemediationRequest", "name": rr_name, "namespace": namespace},
        "workflowRef": {"workflowId": workflow_id, "executionBundle": bundle},
        "targetResource": target,
        **spec_extra,
    }
    if parameters is not None:
        spec["parameters"] = parameters
    return {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
