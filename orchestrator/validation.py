"""What makes a schema-valid RemediationRequest unroutable. Pure; each problem names its field."""

from __future__ import annotations

import re

from shared.models import RemediationRequest
from shared.target import canonical_target
from shared.validation import (
    bundle_reference_problems,
    duration_problems,
    parameter_problems,
    service_account_problems,
)

_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_NAME = re.compile(r"^[^/\s]+$")


def semantic_problems(rr: RemediationRequest) -> list[str]:
    spec = rr.spec
    target = spec.target_resource
    problems = []
    if not _KIND.match(target.kind):
        problems.append(f"spec.targetResource.kind: not a Kubernetes kind (got {target.kind!r})")
    if not _NAME.match(target.name):
        problems.append(f"spec.targetResource.name: not an object name (got {target.name!r})")
    if target.namespace is not None and target.namespace != "" and not _NAME.match(target.namespace):
        problems.append(f"spec.targetResource.namespace: not a namespace name (got {target.namespace!r})")
    if not problems:
        canonical_target(target.kind, target.name, target.namespace)
    problems += bundle_reference_problems("spec.workflowRef.executionBundle", spec.workflow_ref.execution_bundle)
    problems += service_account_problems("spec.workflowRef.serviceAccountName", spec.workflow_ref.service_account_name)
    problems += parameter_problems("spec.parameters", spec.parameters)
    if spec.timeouts:
        problems += duration_problems("spec.timeouts.executing", spec.timeouts.executing)
    return problems
