"""WorkflowExecution (SPEC 2): one run of a workflow on one target. Status is the executor's."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from shared.apiresource import ApiResource
from shared.models._base import (
    Bool,
    Conditions,
    Duration,
    Int,
    K8sModel,
    KubeObject,
    NonNegativeInt,
    ObjectReference,
    Time,
)
from shared.models.remediationrequest import GROUP, VERSION, Parameters, WorkflowRef


class ExecutionPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_PHASES  # a set lookup: routing asks this of every execution on a target


_TERMINAL_PHASES = frozenset({ExecutionPhase.COMPLETED, ExecutionPhase.FAILED})


class FailureReason(StrEnum):
    OOM_KILLED = "OOMKilled"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    FORBIDDEN = "Forbidden"
    RESOURCE_EXHAUSTED = "ResourceExhausted"
    CONFIGURATION_ERROR = "ConfigurationError"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    TASK_FAILED = "TaskFailed"
    UNKNOWN = "Unknown"


class ExecutionConfig(K8sModel):
    timeout: Duration | None = Field(None, description="Pipeline timeout (Tekton timeouts.pipeline).")
    service_account_name: str | None = Field(None, max_length=253, description="ServiceAccount of the run.")


class WorkflowExecutionSpec(K8sModel):
    """Immutable after creation."""

    remediation_request_ref: ObjectReference = Field(description="The RemediationRequest this run serves.")
    workflow_ref: WorkflowRef
    target_resource: str = Field(
        min_length=1, max_length=512, description="Canonical target string: namespace/kind/name or kind/name."
    )
    parameters: Parameters | None = None
    execution_config: ExecutionConfig | None = None


class PipelineRunStatusSummary(K8sModel):
    status: str | None = Field(None, max_length=16, description="The Succeeded condition's status.")
    reason: str | None = Field(None, max_length=1024)
    message: str | None = Field(None, max_length=32768)
    completed_tasks: NonNegativeInt | None = None
    total_tasks: NonNegativeInt | None = None


class FailureDetails(K8sModel):
    reason: FailureReason
    message: str | None = Field(None, max_length=32768)
    failed_task_name: str | None = Field(None, max_length=253)
    failed_step_name: str | None = Field(None, max_length=253)
    exit_code: Int | None = None
    failed_at: Time | None = None
    execution_time_before_failure: Duration | None = None
    was_execution_failure: Bool = Field(
        description="True when the workflow had started running (the cluster may have changed); false when it "
        "failed before anything ran."
    )


class WorkflowExecutionStatus(K8sModel):
    """Written only by the executor. Deliberately no failure counters or backoff fields: routing is not ours."""

    phase: ExecutionPhase | None = None
    observed_generation: NonNegativeInt | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    duration: Duration | None = None
    pipeline_run_ref: ObjectReference | None = None
    pipeline_run_status: PipelineRunStatusSummary | None = None
    failure_details: FailureDetails | None = None
    conditions: Conditions | None = None


class WorkflowExecution(KubeObject):
    """One run of a workflow on one target, carried out by the executor as one Tekton PipelineRun."""

    RESOURCE: ClassVar[ApiResource] = ApiResource(GROUP, VERSION, "WorkflowExecution", "workflowexecutions")

    spec: WorkflowExecutionSpec
    status: WorkflowExecutionStatus | None = None
