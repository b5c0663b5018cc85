"""Dry run (SPEC 4.8): route exactly as production would, create nothing, say what would have run. Pure.

An operator turns automatic remediation on by first watching what it would do: globally (`DRY_RUN`), per namespace
(`DRY_RUN_NAMESPACES`) or per request (annotation `kubernaut.ai/dry-run: "true"`). An annotation can only turn dry
run on: `"false"` does not override the settings, so nobody can force a real run where the operator asked for none.
"""

from __future__ import annotations

import orjson

from shared.models import RemediationRequest

DRY_RUN_ANNOTATION = "kubernaut.ai/dry-run"
DRY_RUN_DECISION = "DryRun"
"""The `decision` label of routing_decisions_total for a dry-run completion (routing itself decided Execute)."""
_PARAMETERS_SHOWN = 16384


def is_dry_run(rr: RemediationRequest, *, everywhere: bool, namespaces: frozenset[str]) -> bool:
    """Whether `rr` is a dry run under the settings (`everywhere`: DRY_RUN; `namespaces`: DRY_RUN_NAMESPACES)."""
    if everywhere or (rr.metadata.namespace or "") in namespaces:
        return True
    value = (rr.metadata.annotations or {}).get(DRY_RUN_ANNOTATION, "")
    return value.strip().lower() == "true"


def would_run(rr: RemediationRequest) -> str:
    """What production would have run for `rr`: workflow, bundle, parameters and target, in one line."""
    ref = rr.spec.workflow_ref
    workflow = f"{ref.workflow_id}@{ref.version}" if ref.version else ref.workflow_id
    parameters = orjson.dumps(dict(sorted((rr.spec.parameters or {}).items()))).decode()
    if len(parameters) > _PARAMETERS_SHOWN:  # status.message holds at most 32768 characters
        parameters = parameters[:_PARAMETERS_SHOWN] + f"... ({len(parameters)} characters in all)"
    account = f", service account {ref.service_account_name}" if ref.service_account_name else ""
    return (
        f"dry run: would have run workflow {workflow} from bundle {ref.execution_bundle} with parameters "
        f"{parameters} on {rr.spec.target_resource.canonical}{account}; no WorkflowExecution was created"
    )
