"""NotificationRequests: one notice per incident, not per request (SPEC 4.6). Pure builders.

The name derives from what caused the notice (the failed execution, the fingerprint's failure streak, the timed-out
request), so every request that hits the same cause references the same NotificationRequest, and re-creating it is
idempotent: a flapping alert cannot flood anyone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from shared.models import NotificationPriority, NotificationRequest, NotificationType, RemediationRequest


@dataclass(frozen=True, slots=True)
class Notice:
    prefix: str
    incident: str
    type: NotificationType
    priority: NotificationPriority
    subject: str
    body: str

    @property
    def name(self) -> str:
        return f"{self.prefix}-{hashlib.sha256(self.incident.encode()).hexdigest()[:16]}"


def _target(rr: RemediationRequest) -> str:
    return rr.spec.target_resource.canonical


def manual_review(rr: RemediationRequest, failed_execution: str) -> Notice:
    return Notice(
        "review",
        failed_execution,
        NotificationType.MANUAL_REVIEW,
        NotificationPriority.CRITICAL,
        f"Manual review required: a workflow failed during execution on {_target(rr)}",
        f"WorkflowExecution {failed_execution} failed after it had started, so {_target(rr)} may be half-changed. "
        f"No workflow will run on it until someone checks the target and acknowledges the failure with the "
        f"kubernaut.ai/execution-failure-acknowledged annotation (or deletes the WorkflowExecution).",
    )


def ineffective_chain(rr: RemediationRequest, incident: str, message: str) -> Notice:
    """One notice per chain: `incident` names the fingerprint and the chain's newest completion, so every request
    skipped on the same chain references it; after an acknowledgement a new chain gets a new notice."""
    return Notice(
        "chain",
        incident,
        NotificationType.MANUAL_REVIEW,
        NotificationPriority.CRITICAL,
        f"Manual review required: remediation of {rr.spec.signal_name} on {_target(rr)} is not fixing it",
        f"{message}. RemediationRequest {rr.metadata.name} was not executed. Find the cause the workflow hides, then "
        f"annotate {rr.metadata.name} with kubernaut.ai/ineffective-chain-acknowledged (any non-empty value, e.g. "
        f"who and why) so that the signal is remediated again.",
    )


def breaker_open(rr: RemediationRequest, incident: str, message: str) -> Notice:
    return Notice(
        "breaker",
        incident,
        NotificationType.ESCALATION,
        NotificationPriority.HIGH,
        f"Remediation of {rr.spec.signal_name} on {_target(rr)} blocked after repeated failures",
        message,
    )


def breaker_expired(rr: RemediationRequest, incident: str) -> Notice:
    return Notice(
        "breaker-expired",
        incident,
        NotificationType.STATUS_UPDATE,
        NotificationPriority.LOW,
        f"Cooldown ended for {rr.spec.signal_name} on {_target(rr)}; blocked requests were not executed",
        "The consecutive-failure cooldown expired. Requests that waited on it ended as Failed (NotExecuted); "
        "a new signal will be routed again.",
    )


def timed_out(rr: RemediationRequest, limit: str) -> Notice:
    return Notice(
        "timeout",
        f"{rr.metadata.namespace}/{rr.metadata.name}/{rr.metadata.uid}",
        NotificationType.ESCALATION,
        NotificationPriority.CRITICAL,
        f"Remediation of {rr.spec.signal_name} on {_target(rr)} timed out",
        f"RemediationRequest {rr.metadata.name} was executing for longer than {limit}.",
    )


def notification_request(rr: RemediationRequest, notice: Notice) -> dict[str, Any]:
    """The NotificationRequest object for `notice`, owned by `rr`, in its namespace."""
    return {
        "apiVersion": NotificationRequest.RESOURCE.api_version,
        "kind": NotificationRequest.RESOURCE.kind,
        "metadata": {
            "name": notice.name,
            "namespace": rr.metadata.namespace,
            "labels": {"kubernaut.ai/notification-type": notice.type.value},
            "ownerReferences": [
                {
                    "apiVersion": rr.api_version,
                    "kind": rr.kind,
                    "name": rr.metadata.name,
                    "uid": rr.metadata.uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "remediationRequestRef": {"kind": rr.kind, "name": rr.metadata.name, "namespace": rr.metadata.namespace},
            "type": notice.type.value,
            "priority": notice.priority.value,
            "subject": notice.subject[:500],
            "body": notice.body,
            "metadata": {
                "incident": notice.incident[:4096],
                "target": _target(rr),
                "signalFingerprint": rr.spec.signal_fingerprint,
            },
        },
    }
