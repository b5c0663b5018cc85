"""Failure classification (SPEC 5): a failed PipelineRun -> FailureDetails reason and wasExecutionFailure. Pure.

The rules look at the Succeeded condition's reason and message, lower-cased; the first that matches wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.models import FailureReason

Rule = tuple[FailureReason, Callable[[str, str], bool]]

# (reason, message) -> matches?  In this order.
RULES: list[Rule] = [
    (FailureReason.OOM_KILLED, lambda r, m: "oomkilled" in m or "oom" in m),
    (FailureReason.DEADLINE_EXCEEDED, lambda r, m: "timeout" in r or "timeout" in m or "deadline" in m),
    (FailureReason.FORBIDDEN, lambda r, m: "forbidden" in m or "rbac" in m or "permission denied" in m),
    (FailureReason.RESOURCE_EXHAUSTED, lambda r, m: "quota" in m or "resource exhausted" in m),
    (FailureReason.IMAGE_PULL_BACK_OFF, lambda r, m: "imagepullbackoff" in m or "image pull" in m),
    (FailureReason.CONFIGURATION_ERROR, lambda r, m: "invalid" in m or "configuration" in m),
    (FailureReason.TASK_FAILED, lambda r, m: "taskfailed" in r or ("task" in m and "failed" in m)),
]

# Reasons that, before anything started, still mean something ran (or may have).
_RAN_WITHOUT_START = frozenset(
    {FailureReason.OOM_KILLED, FailureReason.DEADLINE_EXCEEDED, FailureReason.FORBIDDEN, FailureReason.TASK_FAILED}
)
# Reasons that, even after a start, mean the workflow's own steps never ran.
_NOTHING_RAN_AFTER_START = frozenset(
    {FailureReason.IMAGE_PULL_BACK_OFF, FailureReason.CONFIGURATION_ERROR, FailureReason.RESOURCE_EXHAUSTED}
)


@dataclass(frozen=True, slots=True)
class Classification:
    reason: FailureReason
    was_execution_failure: bool


def failure_reason(reason: str | None, message: str | None) -> FailureReason:
    r, m = (reason or "").lower(), (message or "").lower()
    return next((result for result, matches in RULES if matches(r, m)), FailureReason.UNKNOWN)


def was_execution_failure(reason: FailureReason, *, started: bool, has_task_runs: bool) -> bool:
    """True when the workflow may have changed the cluster."""
    if started:
        return reason not in _NOTHING_RAN_AFTER_START
    return has_task_runs or reason in _RAN_WITHOUT_START


def classify(reason: str | None, message: str | None, *, started: bool, has_task_runs: bool) -> Classification:
    result = failure_reason(reason, message)
    return Classification(result, was_execution_failure(result, started=started, has_task_runs=has_task_runs))
