"""The executor as a real process (`python -m executor`), SIGKILLed in the middle of a run and started again: the new
process adopts the run it finds and follows it to the end; there is never a second PipelineRun."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.stack import Stack
from sandbox.testing import SandboxHandle
from shared.kubetime import parse_time
from tests.integration.executor.conftest import Scene, StartSimulator

pytestmark = pytest.mark.slow


async def test_a_killed_executor_is_replaced_and_the_new_one_adopts_the_run(
    scene: Scene, sandbox: SandboxHandle, start_tekton: StartSimulator, tmp_path: Path
):
    stack = Stack(sandbox.kubeconfig_for, tmp_path)
    settings = {"watched_namespaces": scene.namespace, "execution_namespace": scene.runs_namespace}
    tekton = await start_tekton()
    first = stack.executor("executor-1", **settings).start()
    try:
        first.wait_ready()
        await scene.execution("web", sim={"duration": "3"})
        await scene.started("web")
        # Hold Tekton, so the run is certainly still going while no executor runs and while the next one starts.
        await tekton.stop()
        run = await scene.run(scene.target("web"))
        assert run["status"]["conditions"][0]["status"] == "Unknown", "the run is still going"
        assert first.kill() == -9
        second = stack.executor("executor-2", **settings).start()
        second.wait_ready()
        assert (await scene.status("web"))["phase"] == "Running"
        await start_tekton()
        status = await scene.phase("web", "Completed")
        assert 'kubernaut_workflowexecution_executions_total{outcome="Completed"} 1.0' in second.metrics()
    finally:
        stack.stop()
    finished = await scene.run(scene.target("web"))
    assert finished["metadata"]["uid"] == run["metadata"]["uid"], "the same run, adopted"
    assert parse_time(status["completionTime"]) == parse_time(finished["status"]["completionTime"])
    assert [(r.code, r.name) for r in scene.creates()] == [(201, "")], "exactly one PipelineRun create, ever"
    assert len(await scene.runs()) == 1
