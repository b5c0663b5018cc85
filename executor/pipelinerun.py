"""The PipelineRun a WorkflowExecution runs as (SPEC 5). Pure builder.

Its name is a per-target lock: `wfe-<first 16 hex of sha256(target)>` in the execution namespace, so two runs on one
target collide at the API server, whatever any cache says.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.models import PipelineRun, WorkflowExecution
from shared.target import label_value, target_label_value

LABEL_WORKFLOW_EXECUTION = "kubernaut.ai/workflow-execution"
LABEL_WORKFLOW_ID = "kubernaut.ai/workflow-id"
LABEL_TARGET = "kubernaut.ai/target"
ANNOTATION_TARGET = "kubernaut.ai/target"
ANNOTATION_WORKFLOW_EXECUTION = "kubernaut.ai/workflow-execution"
ANNOTATION_WORKFLOW_EXECUTION_UID = "kubernaut.ai/workflow-execution-uid"
TARGET_PARAMETER = "TARGET_RESOURCE"


def pipeline_run_name(target: str) -> str:
    return f"wfe-{hashlib.sha256(target.encode()).hexdigest()[:16]}"


def run_service_account(wfe: WorkflowExecution, default_service_account: str) -> str:
    """The ServiceAccount the run's pods use: executionConfig's, else the workflowRef's, else the default."""
    config = wfe.spec.execution_config
    return (
        (config.service_account_name if config else None)
        or wfe.spec.workflow_ref.service_account_name
        or default_service_account
    )


def build_pipeline_run(wfe: WorkflowExecution, *, namespace: str, default_service_account: str) -> dict[str, Any]:
    spec = wfe.spec
    target = spec.target_resource
    config = spec.execution_config
    service_account = run_service_account(wfe, default_service_account)
    params = [{"name": name, "value": value} for name, value in sorted((spec.parameters or {}).items())]
    params.append({"name": TARGET_PARAMETER, "value": target})
    run_spec: dict[str, Any] = {
        "pipelineRef": {
            "resolver": "bundles",
            "params": [
                {"name": "bundle", "value": spec.workflow_ref.execution_bundle},
                {"name": "name", "value": "workflow"},
                {"name": "kind", "value": "pipeline"},
            ],
        },
        "params": params,
        "taskRunTemplate": {"serviceAccountName": service_account},
    }
    if config and config.timeout:
        run_spec["timeouts"] = {"pipeline": config.timeout}
    return {
        "apiVersion": PipelineRun.RESOURCE.api_version,
        "kind": PipelineRun.RESOURCE.kind,
        "metadata": {
            "name": pipeline_run_name(target),
            "namespace": namespace,
            "labels": {
                LABEL_WORKFLOW_EXECUTION: label_value(wfe.metadata.name or ""),
                LABEL_WORKFLOW_ID: label_value(spec.workflow_ref.workflow_id),
                LABEL_TARGET: target_label_value(target),
            },
            "annotations": {
                ANNOTATION_TARGET: target,
                ANNOTATION_WORKFLOW_EXECUTION: wfe.key,
                ANNOTATION_WORKFLOW_EXECUTION_UID: wfe.metadata.uid or "",
            },
        },
        "spec": run_spec,
    }


def workflow_execution_of(pipeline_run: dict[str, Any]) -> tuple[str | None, str | None]:
    """(key, uid) of the WorkflowExecution a PipelineRun was created for, from its annotations."""
    annotations = pipeline_run.get("metadata", {}).get("annotations") or {}
    return annotations.get(ANNOTATION_WORKFLOW_EXECUTION), annotations.get(ANNOTATION_WORKFLOW_EXECUTION_UID)
