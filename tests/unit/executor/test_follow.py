"""The executor's follow path (executor/follow.py) against whatever a real Tekton, several of its replicas with skewed
clocks, or a hand edit may write into a PipelineRun's status (issue 19 item 5).

The property: for any status, reading it never raises; a run whose Succeeded condition is True or False always ends
the execution (Completed or Failed); and every status written is one the WorkflowExecution CRD accepts (checked
with the sandbox's apiextensions validator against manifests/crds, not against our models).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor import follow
from executor.follow import read_run
from sandbox.schema import CustomResourceSchema
from shared.kubetime import format_time
from shared.models import ExecutionPhase, FailureReason, WorkflowExecution, WorkflowExecutionStatus
from tests import factories

CRD = Path(__file__).resolve().parents[3] / "manifests" / "crds" / "workflowexecutions.kubernaut.ai.yaml"
SCHEMA = CustomResourceSchema.from_openapi(
    yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
)
NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
WFE_BODY = factories.workflow_execution("web", "prod", rr_name="web", target="prod/deployment/web")


def crd_errors(status: WorkflowExecutionStatus) -> list[str]:
    obj = {**WFE_BODY, "metadata": {"name": "web", "namespace": "prod"}}
    obj["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return [str(error) for error in SCHEMA.validate(obj)]


# An API server stores a JSON integer as an int64 (kube-apiserver decodes numbers into int64 or float64), so that is
# the range Tekton's writes, and ours, can carry.
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TIMES = st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)).map(
        format_time
    ),
    st.sampled_from(["", "yesterday", "2026-13-40T99:99:99Z", "2026-12-05T12:00:00", "0001-01-01T00:00:00Z"]),
    INT64,
    st.none(),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
REASONS = st.one_of(
    st.sampled_from(
        [
            "Succeeded",
            "Failed",
            "Cancelled",
            "PipelineRunTimeout",
            "CouldntGetPipeline",
            "PipelineValidationFailed",
            "Running",
            "Started",
        ]
    ),
    st.text(max_size=40),
    st.integers(1000, 1100).map(lambda n: "Reason" * n),  # Tekton's reasons have no length limit
    INT64,
    st.none(),
)
MESSAGES = st.one_of(
    st.text(max_size=100),
    st.just("Tasks Completed: 99999999999999999999 (Failed: 1, Cancelled 0), Skipped: 0"),
    st.just("Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 0"),
    st.integers(2700, 3000).map(lambda n: "task failed " * n),  # longer than a status message may be
    st.none(),
    INT64,
)
CHILD = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["TaskRun", "CustomRun"]), "name": st.text(min_size=1, max_size=300)},
        optional={"pipelineTaskName": st.one_of(st.text(max_size=300), INT64)},
    ),
    ANY_JSON,
)
CONDITION = st.fixed_dictionaries(
    {"type": st.just("Succeeded")},
    optional={
        "status": st.one_of(st.sampled_from(["True", "False", "Unknown", "true", ""]), st.booleans(), st.text()),
        "reason": REASONS,
        "message": MESSAGES,
        "lastTransitionTime": TIMES,
    },
)
STATUS = st.fixed_dictionaries(
    {},
    optional={
        "startTime": TIMES,
        "completionTime": TIMES,
        "conditions": st.one_of(st.lists(st.one_of(CONDITION, ANY_JSON), max_size=3), ANY_JSON),
        "childReferences": st.one_of(st.lists(CHILD, max_size=3), ANY_JSON),
        "pipelineSpec": st.one_of(
            st.fixed_dictionaries({"tasks": st.lists(st.just({"name": "t"}), max_size=5)}), ANY_JSON
        ),
    },
)
RUN = st.one_of(st.fixed_dictionaries({"status": STATUS}), st.fixed_dictionaries({"status": ANY_JSON}), ANY_JSON)
RECORDED_START = st.one_of(
    st.none(), st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC))
)


def follow_once(run: Any, recorded_start: datetime | None) -> tuple[follow.RunView, WorkflowExecutionStatus]:
    """What the reconciler's follow path does with a run, minus the API calls (the TaskRun GET is I/O)."""
    status = WorkflowExecutionStatus(phase=ExecutionPhase.RUNNING, start_time=recorded_start)
    view = read_run(run)
    follow.observe(status, view, NOW, 1)
    if view.finished:
        completion = view.completion_time or NOW
        if view.state == "True":
            follow.complete(status, completion)
        else:
            reason, was_execution_failure, message = follow.run_failure(view, status)
            follow.fail(
                status, reason, message, was_execution_failure=was_execution_failure, failed_at=completion, generation=1
            )
    return view, status


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(run=RUN, recorded_start=RECORDED_START)
def test_any_pipeline_run_status_is_followed_without_raising_and_only_writes_what_the_crd_accepts(
    run: Any, recorded_start: datetime | None
):
    view, status = follow_once(run, recorded_start)
    if view.finished:
        assert status.phase in (ExecutionPhase.COMPLETED, ExecutionPhase.FAILED), "a finished run ends the execution"
        if status.start_time is not None:
            assert status.duration is not None
    else:
        assert status.phase is ExecutionPhase.RUNNING
    assert crd_errors(status) == []
    (
        WorkflowExecution.from_k8s(
            {**WFE_BODY, "status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        ),
        "and our own model reads it back",
    )


def test_a_completion_before_the_start_is_recorded_with_duration_zero_and_a_warning():
    """Issue 19: a start time changed after it was recorded, then a completion earlier than that start (two Tekton
    replicas with skewed clocks) raised 'negative duration' on the success path and looped."""
    start = NOW
    end = NOW - timedelta(milliseconds=640)
    run = {
        "status": {
            "startTime": format_time(start + timedelta(seconds=5)),
            "completionTime": format_time(end),
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "done"}],
        }
    }
    status = WorkflowExecutionStatus(phase=ExecutionPhase.RUNNING, start_time=start)
    follow.observe(status, read_run(run), NOW, 1)
    warning = follow.complete(status, end)
    assert (status.phase, status.duration, status.completion_time) == (ExecutionPhase.COMPLETED, "0s", end)
    assert warning is not None and end.isoformat() in warning and start.isoformat() in warning
    assert crd_errors(status) == []


def test_a_failure_before_the_start_is_recorded_with_duration_zero_and_a_warning():
    status = WorkflowExecutionStatus(phase=ExecutionPhase.RUNNING, start_time=NOW)
    warning = follow.fail(
        status,
        FailureReason.TASK_FAILED,
        "task failed",
        was_execution_failure=True,
        failed_at=NOW - timedelta(days=1),
        generation=1,
    )
    assert status.duration == "0s" and status.failure_details is not None
    assert status.failure_details.execution_time_before_failure == "0s"
    assert warning is not None


@pytest.mark.parametrize(
    ("children", "started"),
    [(None, False), ([], False), ([{"name": "a", "kind": "TaskRun"}], True), (["garbage"], True), ({}, False)],
)
def test_started_is_any_child_reference(children: Any, started: bool):
    assert read_run({"status": {"childReferences": children}}).started is started


def test_the_started_condition_outlives_the_run():
    """A run deleted under the execution is judged by the child runs it was last seen with."""
    status = WorkflowExecutionStatus(phase=ExecutionPhase.RUNNING)
    follow.observe(status, read_run({"status": {"childReferences": [{"name": "a"}]}}), NOW, 1)
    assert follow.has_started(status)
    follow.observe(status, read_run({"status": {}}), NOW, 1)
    assert follow.has_started(status)


def test_unreadable_parts_are_named():
    view = read_run({"status": {"startTime": "yesterday", "completionTime": 5, "childReferences": "x"}})
    assert view.start_time is None and view.completion_time is None and not view.started
    assert sorted(p.split(" ")[0] for p in view.problems) == [
        "status.childReferences",
        "status.completionTime",
        "status.startTime",
    ]


def test_a_time_before_the_year_1000_is_written_with_four_digits():
    """Found by the property test: strftime's %Y gave '1-01-01T00:00:00Z', which the CRD's date-time refuses."""
    assert format_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert format_time(datetime(999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)) == "0999-12-31T23:59:59.5Z"
