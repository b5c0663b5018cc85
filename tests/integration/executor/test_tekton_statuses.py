"""Whatever a real Tekton may write into a PipelineRun's status, the running executor survives it (issue 19 item 5),
over HTTP against the sandbox: no Tekton simulator runs; the test writes each generated status into the executor's
own run, as Tekton (or two of its replicas with skewed clocks, or a hand edit) would. A finished run always ends
its WorkflowExecution; an unfinished one leaves it Running, and a later success still completes it. The sandbox
validates every status the executor writes against the WorkflowExecution CRD (a refused write would leave the
execution Running and fail the wait), and no reconcile may fail with anything but an API error.

The statuses come from the same strategies as the pure property test (tests/unit/executor/test_follow.py), which
runs many more of them through executor/follow.py alone.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor.follow import read_run
from executor.pipelinerun import pipeline_run_name
from shared.models import PipelineRun
from tests.integration.executor.conftest import Scene, StartExecutor
from tests.integration.inloop import InLoopController
from tests.unit.executor.test_follow import STATUS

PR = PipelineRun.RESOURCE
NAMES = itertools.count()
DONE = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "Tasks Completed: 1"}


@pytest.fixture
async def executor_alone(start_executor: StartExecutor) -> InLoopController:
    """An executor and no Tekton: the test writes the runs' statuses. One for all the examples of a test."""
    return await start_executor()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(status=STATUS, started=st.booleans())
async def test_any_status_tekton_writes_is_survived_and_a_finished_run_ends_its_execution(
    scene: Scene, executor_alone: InLoopController, status: dict[str, Any], started: bool
):
    name = f"wfe-{next(NAMES)}"
    target = scene.target(name)
    await scene.execution(name, target=target)
    await scene.phase(name, "Running")
    run = pipeline_run_name(target)
    with structlog.testing.capture_logs() as logs:
        if started:  # a first, ordinary status: the start time recorded before the odd one arrives
            first = {"startTime": "2026-12-05T12:00:00Z", "conditions": [{**DONE, "status": "Unknown"}]}
            await scene.kube.patch_status(PR, scene.runs_namespace, run, first)
            await scene.until(name, lambda s: "startTime" in s, "the start time recorded")
        stored = await scene.kube.replace(
            PR, {**(await scene.kube.get(PR, scene.runs_namespace, run)), "status": status}, subresource="status"
        )
        if read_run(stored).finished:
            await scene.until(name, lambda s: s.get("phase") in ("Completed", "Failed"), "the execution to end")
        else:
            await scene.kube.patch_status(
                PR, scene.runs_namespace, run, {"completionTime": "2026-12-05T12:00:01Z", "conditions": [DONE]}
            )
            await scene.until(name, lambda s: s.get("phase") in ("Completed", "Failed"), "the execution to end")
    crashes = [entry for entry in logs if entry.get("event") == "reconcile.failed"]
    assert not crashes, crashes
