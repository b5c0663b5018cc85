"""The subset of Tekton's `tekton.dev/v1` PipelineRun and TaskRun that the executor reads and writes.

Everything else Tekton puts in these objects is kept as unknown fields, so a round trip loses nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from shared.apiresource import ApiResource
from shared.models._base import Int, K8sModel, KubeObject, Time

TEKTON_GROUP = "tekton.dev"
TEKTON_VERSION = "v1"

ParamValue = str | list[str] | dict[str, str]


class Param(K8sModel):
    name: str
    value: ParamValue


class PipelineRef(K8sModel):
    name: str | None = None
    resolver: str | None = None
    params: list[Param] | None = None


class TaskRunTemplate(K8sModel):
    service_account_name: str | None = None


class PipelineRunTimeouts(K8sModel):
    pipeline: str | None = None


class PipelineRunSpec(K8sModel):
    pipeline_ref: PipelineRef | None = None
    params: list[Param] | None = None
    task_run_template: TaskRunTemplate | None = None
    timeouts: PipelineRunTimeouts | None = None


class TektonCondition(K8sModel):
    """Knative-style condition as Tekton writes it (no observedGeneration, reason optional)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: Time | None = None


class ChildReference(K8sModel):
    api_version: str | None = None
    kind: str | None = None
    name: str
    pipeline_task_name: str | None = None


class PipelineRunStatus(K8sModel):
    conditions: list[TektonCondition] | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    child_references: list[ChildReference] | None = None

    def condition(self, type_: str = "Succeeded") -> TektonCondition | None:
        return next((c for c in self.conditions or [] if c.type == type_), None)


class PipelineRun(KubeObject):
    RESOURCE: ClassVar[ApiResource] = ApiResource(TEKTON_GROUP, TEKTON_VERSION, "PipelineRun", "pipelineruns")

    spec: PipelineRunSpec = Field(default_factory=PipelineRunSpec)
    status: PipelineRunStatus | None = None


class ContainerStateTerminated(K8sModel):
    exit_code: Int | None = None
    reason: str | None = None
    message: str | None = None


class StepState(K8sModel):
    name: str | None = None
    container: str | None = None
    terminated: ContainerStateTerminated | None = None


class TaskRunStatus(K8sModel):
    conditions: list[TektonCondition] | None = None
    pod_name: str | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    steps: list[StepState] | None = None

    def condition(self, type_: str = "Succeeded") -> TektonCondition | None:
        return next((c for c in self.conditions or [] if c.type == type_), None)


class TaskRun(KubeObject):
    RESOURCE: ClassVar[ApiResource] = ApiResource(TEKTON_GROUP, TEKTON_VERSION, "TaskRun", "taskruns")

    spec: dict[str, Any] = Field(default_factory=dict)
    status: TaskRunStatus | None = None
