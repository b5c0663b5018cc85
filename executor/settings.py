"""Executor settings (SPEC 5): env prefix KUBERNAUT_EXECUTOR_, or the matching --flag."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ControllerSettings


class ExecutorSettings(ControllerSettings):
    """Where PipelineRuns run and as whom, plus the common controller settings."""

    model_config = SettingsConfigDict(env_prefix="KUBERNAUT_EXECUTOR_")

    execution_namespace: str = Field(
        "kubernaut-workflows", min_length=1, max_length=63, description="Namespace the PipelineRuns are created in."
    )
    default_service_account: str = Field(
        "kubernaut-workflow-runner",
        min_length=1,
        max_length=253,
        description="ServiceAccount of a PipelineRun when the workflow names none.",
    )
    lease_name: str = Field("kubernaut-executor", min_length=1, description="Name of the leader-election Lease.")
