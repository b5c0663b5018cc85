"""The executor's PipelineRun cache may lag behind its WorkflowExecution cache (two watches, two streams): a run it
has not seen yet, or the previous run on the same target still in its cache, is not a deleted run.

Found by the chaos suite: after a watch drop, WorkflowExecutions whose runs were alive failed with "PipelineRun ...
was deleted while the workflow was starting".
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.kubetime import format_time
from tests.integration.executor.conftest import PR, Scene, StartExecutor

pytestmark = pytest.mark.sandbox_only


async def _finish_run(scene: Scene, name: str) -> None:
    """Play Tekton: the run succeeds."""
    now = format_time(datetime.now(UTC))
    condition = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "lastTransitionTime": now}
    await scene.kube.patch_status(
        PR, scene.runs_namespace, name, {"startTime": now, "completionTime": now, "conditions": [condition]}
    )


async def test_a_run_replacing_the_previous_one_on_its_target_is_followed_before_the_cache_sees_it(
    scene: Scene, start_executor: StartExecutor
):
    await start_executor()  # no simulator: the test plays Tekton
    target = scene.target("web")
    await scene.execution("first", target=target)
    run = (await scene.phase("first", "Running"))["pipelineRunRef"]["name"]
    await _finish_run(scene, run)
    await scene.phase("first", "Completed")

    # From here on the executor's PipelineRun cache holds the first run: its watch cannot come back.
    admin = scene.sandbox.admin.aio
    await admin.fail_requests(code=500, seconds=60, verb="watch", resource="pipelineruns")
    await admin.drop_watches()
    try:
        await scene.execution("second", target=target)
        second = await scene.phase("second", "Running")
        assert second["pipelineRunRef"]["name"] == run, "the per-target name: the second run replaced the first"
    finally:
        await admin.clear_faults()
    await _finish_run(scene, run)
    completed = await scene.phase("second", "Completed")
    assert "failureDetails" not in completed
