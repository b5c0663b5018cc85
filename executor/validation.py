"""What makes a WorkflowExecution's spec unrunnable (-> Failed, ConfigurationError). Pure; problems name fields."""

from __future__ import annotations

from shared.models import WorkflowExecution
from shared.target import parse_target
from shared.validation import (
    bundle_reference_problems,
    duration_problems,
    parameter_problems,
    service_account_problems,
)


def spec_problems(wfe: WorkflowExecution) -> list[str]:
    spec = wfe.spec
    problems = []
    try:
        parse_target(spec.target_resource)
    except ValueError as error:
        problems.append(f"spec.targetResource: {error}")
    problems += bundle_reference_problems("spec.workflowRef.executionBundle", spec.workflow_ref.execution_bundle)
    problems += parameter_problems("spec.parameters", spec.parameters)
    problems += service_account_problems("spec.workflowRef.serviceAccountName", spec.workflow_ref.service_account_name)
    config = spec.execution_config
    if config is not None:
        problems += service_account_problems("spec.executionConfig.serviceAccountName", config.service_account_name)
        problems += duration_problems("spec.executionConfig.timeout", config.timeout)
    return problems
