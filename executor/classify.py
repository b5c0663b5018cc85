"""Failure classification (SPEC 5): a failed PipelineRun -> FailureDetails reason and wasExecutionFailure. Pure.

The rules look at the Succeeded condition's reason and message, lower-cased; the first that matches wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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

# Reasons that, even once child runs exist, mean the workflow's own steps never ran.
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


def started(child_references: Iterable[Any] | None) -> bool:
    """Whether the workflow started: at least one child TaskRun or CustomRun exists (SPEC 5).

    Not `status.startTime`: real Tekton sets that on its first reconcile, before it resolves the pipeline, so a run
    whose bundle cannot be fetched has a start time and nothing ran."""
    return any(True for _ in child_references or ())


def was_execution_failure(reason: FailureReason, *, started: bool) -> bool:
    """True when the workflow may have changed the cluster: it started, and the failure is not one that stops a
    pod before its first step."""
    return started and reason not in _NOTHING_RAN_AFTER_START


def classify(reason: str | None, message: str | None, *, started: bool) -> Classification:
    result = failure_reason(reason, message)
    return Classification(result, was_execution_failure(result, started=started))
