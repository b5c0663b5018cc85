"""RemediationRequest (SPEC 2): a signal that asks for a remediation workflow. Status is the orchestrator's."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from shared.apiresource import ApiResource
from shared.models._base import (
    Bool,
    Conditions,
    Duration,
    K8sModel,
    KubeObject,
    NonNegativeInt,
    ObjectReference,
    Time,
)
from shared.target import canonical_target

GROUP = "kubernaut.ai"
VERSION = "v1alpha1"

FINGERPRINT_PATTERN = r"^[a-f0-9]{64}$"
Parameters = Annotated[dict[str, Annotated[str, Field(max_length=8192)]], Field(max_length=64)]


class RemediationPhase(StrEnum):
    PENDING = "Pending"
    BLOCKED = "Blocked"
    EXECUTING = "Executing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    SKIPPED = "Skipped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset(
    {RemediationPhase.COMPLETED, RemediationPhase.FAILED, RemediationPhase.TIMED_OUT, RemediationPhase.SKIPPED}
)


class BlockReason(StrEnum):
    DUPLICATE_IN_PROGRESS = "DuplicateInProgress"
    CONSECUTIVE_FAILURES = "ConsecutiveFailures"
    RESOURCE_BUSY = "ResourceBusy"
    RECENTLY_REMEDIATED = "RecentlyRemediated"
    EXPONENTIAL_BACKOFF = "ExponentialBackoff"


class SkipReason(StrEnum):
    PREVIOUS_EXECUTION_FAILED = "PreviousExecutionFailed"
    INEFFECTIVE_CHAIN = "IneffectiveChain"


class Outcome(StrEnum):
    REMEDIATED = "Remediated"
    MANUAL_REVIEW_REQUIRED = "ManualReviewRequired"
    INHERITED_COMPLETED = "InheritedCompleted"
    INHERITED_FAILED = "InheritedFailed"
    NOT_EXECUTED = "NotExecuted"
    DRY_RUN = "DryRun"


class FailurePhase(StrEnum):
    ROUTING = "Routing"
    WORKFLOW_EXECUTION = "WorkflowExecution"
    BLOCKED = "Blocked"
    DEDUPLICATED = "Deduplicated"
    TIMEOUT = "Timeout"


class ResourceIdentifier(K8sModel):
    """The Kubernetes object the signal is about; an empty namespace means cluster-scoped."""

    kind: str = Field(min_length=1, max_length=63, description="Kind of the target, e.g. Deployment.")
    name: str = Field(min_length=1, max_length=253, description="Name of the target.")
    namespace: str | None = Field(None, max_length=63, description="Namespace; empty for a cluster-scoped target.")

    @property
    def canonical(self) -> str:
        """The canonical target string (shared.target)."""
        return canonical_target(self.kind, self.name, self.namespace)


class WorkflowRef(K8sModel):
    """The remediation workflow to run: a Tekton pipeline in an OCI bundle."""

    workflow_id: str = Field(min_length=1, max_length=253, description="Catalogue identifier of the workflow.")
    version: str | None = Field(None, max_length=63, description="Workflow version.")
    execution_bundle: str = Field(
        min_length=1, max_length=512, description="OCI bundle reference holding the Tekton pipeline named 'workflow'."
    )
    service_account_name: str | None = Field(
        None, max_length=253, description="ServiceAccount the workflow runs as (default: the executor's setting)."
    )


class RemediationTimeouts(K8sModel):
    executing: Duration | None = Field(
        None, description="How long the workflow may execute before the request times out (default 30m)."
    )


class RemediationRequestSpec(K8sModel):
    """Immutable after creation."""

    signal_fingerprint: str = Field(
        pattern=FINGERPRINT_PATTERN,
        max_length=64,
        description="SHA-256 of the signal's identifying fields: 64 lower-case hex characters.",
    )
    signal_name: str = Field(min_length=1, max_length=253, description="Human-readable signal name.")
    severity: str | None = Field(None, min_length=1, max_length=50, description="Severity as the source reports it.")
    signal_type: str | None = Field(None, max_length=63, description="Kind of signal, e.g. alert.")
    signal_source: str | None = Field(None, max_length=253, description="Adapter that ingested the signal.")
    target_resource: ResourceIdentifier = Field(description="The object to remediate.")
    workflow_ref: WorkflowRef = Field(description="The workflow to run.")
    parameters: Parameters | None = Field(None, description="Parameters passed to the workflow.")
    timeouts: RemediationTimeouts | None = None


class RemediationRequestStatus(K8sModel):
    """Written only by the orchestrator, through the status subresource."""

    phase: RemediationPhase | None = Field(None, description="Lifecycle phase; Blocked is not terminal.")
    reason: str | None = Field(
        None,
        max_length=1024,
        description="Brief CamelCase reason for the phase: the block reason while Blocked, else the skip reason.",
    )
    observed_generation: NonNegativeInt | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    message: str | None = Field(None, max_length=32768)
    block_reason: BlockReason | None = None
    block_message: str | None = Field(None, max_length=32768)
    blocked_until: Time | None = Field(None, description="End of a time-based block; absent for event-cleared blocks.")
    blocking_workflow_execution: str | None = Field(
        None,
        max_length=317,
        description="The WorkflowExecution in the way: its name, or namespace/name in another namespace.",
    )
    duplicate_of: str | None = Field(None, max_length=253, description="The original request this one waits on.")
    duplicate_count: NonNegativeInt | None = Field(None, description="How many requests waited on this one.")
    skip_reason: SkipReason | None = None
    requires_manual_review: Bool | None = None
    outcome: Outcome | None = None
    consecutive_failure_count: NonNegativeInt | None = Field(
        None, description="The fingerprint's consecutive workflow failures, as of this request's failure."
    )
    next_allowed_execution: Time | None = Field(
        None, description="Earliest time a new request of this fingerprint may execute (backoff)."
    )
    ineffective_count: NonNegativeInt | None = Field(
        None,
        description="Completed remediations of this signal and target in a row after which the signal came back "
        "within the ineffective window, as of this request's routing (absent: none).",
    )
    failure_phase: FailurePhase | None = None
    failure_reason: str | None = Field(None, max_length=1024)
    workflow_execution_ref: ObjectReference | None = None
    notification_request_refs: list[ObjectReference] | None = None
    conditions: Conditions | None = None


class RemediationRequest(KubeObject):
    """A signal that asks for a remediation; the orchestrator decides whether and when its workflow runs."""

    RESOURCE: ClassVar[ApiResource] = ApiResource(GROUP, VERSION, "RemediationRequest", "remediationrequests")

    spec: RemediationRequestSpec
    status: RemediationRequestStatus | None = None
