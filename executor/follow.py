"""Following a PipelineRun (SPEC 5): what its status says, and what that makes of the WorkflowExecution. Pure.

A PipelineRun is Tekton's object, written by Tekton's controllers (several replicas, skewed clocks) and by hand, so
nothing in it is trusted: a time may be missing, malformed or out of order, a reason or status unknown, a message
huge, a list not a list. `read_run` turns any JSON into a `RunView` without raising; the functions below only ever
write values the WorkflowExecution CRD accepts (lengths cut, times clamped, reasons sanitised by set_condition).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from executor.classify import classify
from shared.duration import format_duration
from shared.kubetime import parse_time
from shared.models import ExecutionPhase, FailureDetails, FailureReason, PipelineRunStatusSummary
from shared.models.conditions import set_condition
from shared.models.workflowexecution import WorkflowExecutionStatus

_TASKS_COMPLETED = re.compile(r"Tasks Completed: (\d{1,9})\b")
MAX_MESSAGE = 32768
MAX_REASON = 1024
MAX_NAME = 253
MAX_INT32 = 2**31 - 1
# Conditions the executor sets besides Succeeded.
CONDITION_CREATED = "PipelineRunCreated"
CONDITION_STARTED = "Started"
CONDITION_SUCCEEDED = "Succeeded"


@dataclass(frozen=True, slots=True)
class Child:
    """One entry of `status.childReferences`: a TaskRun or CustomRun of the pipeline."""

    name: str
    kind: str | None
    pipeline_task_name: str | None


@dataclass(frozen=True, slots=True)
class RunView:
    """What the executor reads from a PipelineRun, each part independent of the others' shape."""

    start_time: datetime | None = None
    completion_time: datetime | None = None
    children: tuple[Child, ...] = ()  # the readable ones
    child_count: int = 0  # every entry, readable or not: any entry means something was started
    state: str | None = None  # the Succeeded condition's status: True, False, Unknown, or whatever Tekton wrote
    reason: str | None = None
    message: str = ""
    total_tasks: int | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.state in ("True", "False")

    @property
    def started(self) -> bool:
        return self.child_count > 0


def _time(status: dict[str, Any], name: str, problems: list[str]) -> datetime | None:
    value = status.get(name)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError("not a string")
        return parse_time(value)
    except (ValueError, OverflowError) as error:
        problems.append(f"status.{name} {str(value)[:64]!r} is not a time ({error})")
        return None


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def read_run(run: Any) -> RunView:
    """The parts of a PipelineRun the executor uses. Never raises: a part that cannot be read is left out and
    named in `problems`."""
    problems: list[str] = []
    status = run.get("status") if isinstance(run, dict) else None
    if not isinstance(status, dict):
        return RunView()
    references = status.get("childReferences")
    if references is not None and not isinstance(references, list):
        problems.append("status.childReferences is not a list")
        references = None
    children = [
        Child(
            name=reference["name"],
            kind=_text(reference.get("kind"), 63),
            pipeline_task_name=_text(reference.get("pipelineTaskName"), MAX_NAME),
        )
        for reference in references or []
        if isinstance(reference, dict) and isinstance(reference.get("name"), str) and reference["name"]
    ]
    conditions = status.get("conditions")
    condition = (
        next(
            (c for c in conditions if isinstance(c, dict) and c.get("type") == CONDITION_SUCCEEDED),
            None,
        )
        if isinstance(conditions, list)
        else None
    )
    state = condition.get("status") if condition else None
    if state is not None and not isinstance(state, str):
        problems.append(f"the Succeeded condition's status {str(state)[:64]!r} is not a string")
        state = None
    spec = status.get("pipelineSpec")
    tasks = spec.get("tasks") if isinstance(spec, dict) else None
    return RunView(
        start_time=_time(status, "startTime", problems),
        completion_time=_time(status, "completionTime", problems),
        children=tuple(children),
        child_count=len(references or []),
        state=state[:64] if state is not None else None,
        reason=_text(condition.get("reason"), MAX_REASON) if condition else None,
        message=(_text(condition.get("message"), MAX_MESSAGE) or "") if condition else "",
        total_tasks=len(tasks) if isinstance(tasks, list) else None,
        problems=tuple(problems),
    )


def elapsed(start: datetime | None, end: datetime) -> tuple[timedelta | None, str | None]:
    """From `start` to `end`, never negative: an end before the start (skewed Tekton replicas, a hand edit) is 0,
    with a warning naming both times."""
    if start is None:
        return None, None
    if end < start:
        return timedelta(0), f"completion time {end.isoformat()} is before start time {start.isoformat()}"
    return end - start, None


def observe(status: WorkflowExecutionStatus, view: RunView, now: datetime, generation: int | None) -> None:
    """Copy the run's start, progress and Succeeded condition into `status` (in place)."""
    if view.start_time is not None and status.start_time is None:
        status.start_time = view.start_time
    if view.started:
        status.conditions = set_condition(
            status.conditions,
            CONDITION_STARTED,
            "True",
            "ChildRunsCreated",
            f"{view.child_count} child run(s): " + ", ".join(c.name for c in view.children[:10]),
            now,
            generation,
        )
    if view.state is None:
        return
    completed = _TASKS_COMPLETED.search(view.message)
    status.pipeline_run_status = PipelineRunStatusSummary(
        status=view.state[:16],
        reason=view.reason or None,
        message=view.message or None,
        completed_tasks=min(int(completed.group(1)), MAX_INT32) if completed else None,
        total_tasks=min(view.total_tasks, MAX_INT32) if view.total_tasks is not None else None,
    )
    state = view.state if view.state in ("True", "False") else "Unknown"
    status.conditions = set_condition(
        status.conditions,
        CONDITION_SUCCEEDED,
        state,  # type: ignore[arg-type]
        view.reason or "Running",
        view.message,
        now,
        generation,
    )


def has_started(status: WorkflowExecutionStatus) -> bool:
    """Whether a child run of this execution was ever seen (kept as the Started condition, so a run deleted under
    the execution is still judged by what it had done)."""
    return any(c.type == CONDITION_STARTED and c.status == "True" for c in status.conditions or [])


def complete(status: WorkflowExecutionStatus, at: datetime) -> str | None:
    """Mark `status` Completed at `at`; returns a warning when the run's times are out of order."""
    status.phase = ExecutionPhase.COMPLETED
    status.completion_time = at
    ran_for, warning = elapsed(status.start_time, at)
    if ran_for is not None:
        status.duration = format_duration(ran_for)
    return warning


def fail(
    status: WorkflowExecutionStatus,
    reason: FailureReason,
    message: str,
    *,
    was_execution_failure: bool,
    failed_at: datetime,
    generation: int | None,
    failed_task: tuple[str | None, str | None, int | None] = (None, None, None),
) -> str | None:
    """Mark `status` Failed; returns a warning when the run's times are out of order."""
    task, step, exit_code = failed_task
    status.phase = ExecutionPhase.FAILED
    status.completion_time = failed_at
    ran_for, warning = elapsed(status.start_time, failed_at)
    if ran_for is not None:
        status.duration = format_duration(ran_for)
    status.failure_details = FailureDetails(
        reason=reason,
        message=message[:MAX_MESSAGE],
        failed_task_name=task[:MAX_NAME] if task else None,
        failed_step_name=step[:MAX_NAME] if step else None,
        exit_code=exit_code if exit_code is not None and -MAX_INT32 - 1 <= exit_code <= MAX_INT32 else None,
        failed_at=failed_at,
        execution_time_before_failure=status.duration if ran_for is not None else None,
        was_execution_failure=was_execution_failure,
    )
    status.conditions = set_condition(
        status.conditions, CONDITION_SUCCEEDED, "False", reason.value, message, failed_at, generation
    )
    return warning


def run_failure(view: RunView, status: WorkflowExecutionStatus) -> tuple[FailureReason, bool, str]:
    """(reason, wasExecutionFailure, message) of a run that ended Succeeded=False."""
    result = classify(view.reason, view.message, started=view.started or has_started(status))
    return result.reason, result.was_execution_failure, view.message or view.reason or "the PipelineRun failed"
