"""Executor settings (SPEC 5): env prefix KUBERNAUT_EXECUTOR_, or the matching --flag."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_settings import NoDecode, SettingsConfigDict

from executor.allowlist import pattern_problem
from shared.settings import ControllerSettings, _comma_list
from shared.validation import service_account_problems


def _patterns(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    problems = [problem for pattern in value if (problem := pattern_problem(pattern))]
    if problems:
        raise ValueError("; ".join(problems))
    if not value:
        raise ValueError("empty: unset it to allow any bundle, or name at least one pattern")
    return value


def _service_accounts(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    problems = [p for name in value for p in service_account_problems("service account", name)]
    if problems:
        raise ValueError("; ".join(problems))
    if not value:
        raise ValueError("empty: unset it to allow only the default service account, or name at least one")
    return value


BundlePatterns = Annotated[list[str] | None, NoDecode, BeforeValidator(_comma_list), AfterValidator(_patterns)]
ServiceAccounts = Annotated[list[str] | None, NoDecode, BeforeValidator(_comma_list), AfterValidator(_service_accounts)]


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
    allowed_bundles: BundlePatterns = Field(
        None,
        description="Comma-separated patterns of the bundles a workflow may run (registry.example.com/kubernaut/*: "
        "'*' within a path segment, '**' across); unset: any bundle, with a warning at start-up.",
    )
    allowed_service_accounts: ServiceAccounts = Field(
        None,
        description="Comma-separated ServiceAccounts a workflow may run as; default: only the default service account.",
    )
    timeout_grace: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Seconds past a WorkflowExecution's executionConfig.timeout the executor leaves Tekton to end "
        "the run itself before it cancels the run and fails the execution (DeadlineExceeded).",
    )
    lease_name: str = Field("kubernaut-executor", min_length=1, description="Name of the leader-election Lease.")

    def service_accounts(self) -> list[str]:
        """The ServiceAccounts a workflow may run as."""
        return self.allowed_service_accounts or [self.default_service_account]
