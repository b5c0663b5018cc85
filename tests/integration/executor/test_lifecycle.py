"""SPEC 5 lifecycle over real HTTP and watches: a run from creation to its end, the per-target lock (adopt, take
over, refuse), a PipelineRun deleted under a running execution, and the deletion of an execution."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from executor.pipelinerun import build_pipeline_run
from executor.reconciler import FINALIZER
from sandbox.stack import USERS
from shared.duration import format_duration
from shared.kubetime import format_time, parse_time
from shared.models import WorkflowExecution
from shared.runtime.client import ApiError
from tests import factories
from tests.integration.executor.conftest import PR, WFE, Scene, StartExecutor, StartSimulator
from tests.integration.helpers import eventually
from tests.integration.inloop import InLoopController

LONG = {"duration": "60"}  # a run that stays Running for the whole test
SIM_LONG = {"SIM_DURATION": "60"}


async def test_a_run_succeeds_and_its_times_come_from_the_pipeline_run(scene: Scene, executor: InLoopController):
    await scene.execution(
        "web",
        parameters={"REPLICAS": "3"},
        executionConfig={"timeout": "10m", "serviceAccountName": "runner-sa"},
    )
    status = await scene.phase("web", "Completed")
    target = scene.target("web")
    run = await scene.run(target)
    run_status = run["status"]
    start, end = parse_time(run_status["startTime"]), parse_time(run_status["completionTime"])
    assert parse_time(status["startTime"]) == start
    assert parse_time(status["completionTime"]) == end
    assert status["duration"] == format_duration(end - start)
    assert status["pipelineRunRef"] == {
        "kind": "PipelineRun",
        "name": run["metadata"]["name"],
        "namespace": scene.runs_namespace,
    }
    assert status["pipelineRunStatus"] == {
        "status": "True",
        "reason": "Succeeded",
        "message": "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0",
        "completedTasks": 2,
        "totalTasks": 2,
    }
    assert "failureDetails" not in status
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PipelineRunCreated": "True",
        "Started": "True",  # child TaskRuns exist (SPEC 5)
        "Succeeded": "True",
    }
    assert await scene.phases("web") == ["Running", "Completed"]
    assert FINALIZER in (await scene.get("web"))["metadata"]["finalizers"]
    await scene.has_events("web", "PipelineRunCreated", "WorkflowCompleted")
    assert executor.metric("pipelinerun_creations_total") == 1
    assert executor.metric("executions_total", outcome="Completed") == 1
    assert executor.metric("execution_duration_seconds_count", outcome="Completed") == 1


async def test_the_pipeline_run_is_built_from_the_execution(scene: Scene, executor: InLoopController):
    wfe = await scene.execution(
        "web",
        parameters={"REPLICAS": "3"},
        executionConfig={"timeout": "10m", "serviceAccountName": "runner-sa"},
    )
    await scene.phase("web", "Completed")
    target = scene.target("web")
    run = await scene.run(target)
    meta, spec = run["metadata"], run["spec"]
    assert meta["name"] == "wfe-" + hashlib.sha256(target.encode()).hexdigest()[:16]
    assert meta["labels"] == {
        "kubernaut.ai/workflow-execution": "web",
        "kubernaut.ai/workflow-id": "restart-pods",
        "kubernaut.ai/target": target.replace("/", "_"),
    }
    assert meta["annotations"]["kubernaut.ai/target"] == target
    assert meta["annotations"]["kubernaut.ai/workflow-execution-uid"] == wfe["metadata"]["uid"]
    assert spec["pipelineRef"] == {
        "resolver": "bundles",
        "params": [
            {"name": "bundle", "value": "registry.example.com/workflows/restart-pods:v1"},
            {"name": "name", "value": "workflow"},
            {"name": "kind", "value": "pipeline"},
        ],
    }
    assert spec["params"] == [{"name": "REPLICAS", "value": "3"}, {"name": "TARGET_RESOURCE", "value": target}]
    assert spec["taskRunTemplate"] == {"serviceAccountName": "runner-sa"}
    assert spec["timeouts"] == {"pipeline": "10m"}


async def test_without_a_service_account_the_run_uses_the_default(scene: Scene, executor: InLoopController):
    await scene.execution("web")
    await scene.phase("web", "Completed")
    run = await scene.run(scene.target("web"))
    assert run["spec"]["taskRunTemplate"] == {"serviceAccountName": "kubernaut-workflow-runner"}
    assert "timeouts" not in run["spec"]


async def test_a_run_that_already_exists_for_this_execution_is_adopted(
    scene: Scene, start_executor: StartExecutor, start_tekton: StartSimulator
):
    """A previous executor created the run and died before writing Running: the next one takes it as its own."""
    wfe = await scene.execution("web")
    earlier = build_pipeline_run(
        WorkflowExecution.from_k8s(wfe), namespace=scene.runs_namespace, default_service_account="runner"
    )
    created = await scene.kube.create(PR, earlier)
    await start_tekton()
    executor = await start_executor()
    status = await scene.phase("web", "Completed")
    run = await scene.run(scene.target("web"))
    assert run["metadata"]["uid"] == created["metadata"]["uid"]
    assert status["pipelineRunRef"]["name"] == created["metadata"]["name"]
    assert [r.code for r in scene.creates()] == [409], "one attempt, answered AlreadyExists; no second run"
    assert executor.metric("executions_total", outcome="Completed") == 1


async def test_the_lock_of_a_finished_run_is_taken_over_by_the_next_execution(scene: Scene, executor: InLoopController):
    target = scene.target("web")
    await scene.execution("first", target=target)
    await scene.phase("first", "Completed")
    first_run = await scene.run(target)
    await scene.execution("second", target=target)
    await scene.phase("second", "Completed")
    second_run = await scene.run(target)
    assert second_run["metadata"]["uid"] != first_run["metadata"]["uid"]
    assert second_run["metadata"]["labels"]["kubernaut.ai/workflow-execution"] == "second"
    assert [r.code for r in scene.creates()] == [201, 409, 201]
    assert (await scene.status("first"))["phase"] == "Completed", "the earlier execution keeps its result"
    # Deleting the earlier execution leaves the run that is no longer its own alone.
    await scene.kube.delete(WFE, scene.namespace, "first")
    await eventually(lambda: _gone(scene, "first"), what="first to be deleted")
    assert (await scene.run(target))["metadata"]["uid"] == second_run["metadata"]["uid"]


async def test_a_finished_run_changes_hands_only_after_its_execution_recorded_the_end(
    scene: Scene, executor: InLoopController
):
    """Taking the lock of a finished run before its own execution has read the result would make that execution see
    its run vanish and fail as 'deleted'; the next execution waits until the result is recorded."""
    target = scene.target("web")
    await scene.execution("first", target=target, sim=LONG)
    await scene.started("first")
    admin = scene.sandbox.admin.aio
    await admin.fail_requests(
        code=500, seconds=60, verb="patch", resource="workflowexecutions", subresource="status", name="first"
    )
    try:
        # The test plays Tekton for the end of the run, so it ends only once first can no longer record it.
        run = await scene.run(target)
        finished = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "Tasks Completed: 2"}
        await scene.kube.patch_status(
            PR, scene.runs_namespace, run["metadata"]["name"], {"conditions": [finished], "completionTime": _now()}
        )
        await scene.execution("second", target=target)
        await eventually(
            lambda: [r.code for r in scene.creates()].count(409) >= 2, what="second to find the lock taken twice"
        )
        assert (await scene.run(target))["metadata"]["uid"] == run["metadata"]["uid"], "the run stays"
    finally:
        await admin.clear_faults()
    assert (await scene.phase("first", "Completed"))["pipelineRunRef"]["name"] == run["metadata"]["name"]
    await scene.phase("second", "Completed")
    assert (await scene.run(target))["metadata"]["labels"]["kubernaut.ai/workflow-execution"] == "second"


def _now() -> str:
    return format_time(datetime.now(UTC))


async def test_a_live_run_whose_execution_is_gone_is_taken_over(scene: Scene, executor: InLoopController):
    target = scene.target("web")
    never_was = factories.workflow_execution("never-was", scene.namespace, target=target, parameters=SIM_LONG)
    never_was["metadata"]["uid"] = "6d3c7a2e-0000-4000-8000-000000000000"
    orphan = build_pipeline_run(
        WorkflowExecution.from_k8s(never_was), namespace=scene.runs_namespace, default_service_account="runner"
    )
    planted = await scene.kube.create(PR, orphan)
    await scene.execution("new", target=target)
    await scene.phase("new", "Completed")
    run = await scene.run(target)
    assert run["metadata"]["uid"] != planted["metadata"]["uid"]
    assert run["metadata"]["labels"]["kubernaut.ai/workflow-execution"] == "new"
    assert [r.code for r in scene.creates()][-1] == 201


async def test_an_execution_is_refused_while_another_runs_on_its_target(scene: Scene, executor: InLoopController):
    target = scene.target("web")
    await scene.execution("first", target=target, sim=LONG)
    await scene.started("first")
    live = await scene.run(target)
    await scene.execution("second", target=target)
    status = await scene.phase("second", "Failed")
    details = status["failureDetails"]
    assert details["wasExecutionFailure"] is False
    assert details["reason"] == "Unknown"
    assert f"{scene.namespace}/first" in details["message"] and live["metadata"]["name"] in details["message"]
    assert "refusing" in details["message"]
    assert "startTime" not in status and "pipelineRunRef" not in status
    assert (await scene.run(target))["metadata"]["uid"] == live["metadata"]["uid"], "the live run is untouched"
    assert (await scene.status("first"))["phase"] == "Running"
    assert executor.metric("failures_total", reason="Unknown", was_execution_failure="false") == 1


async def test_a_pipeline_run_deleted_under_a_running_execution_fails_it(scene: Scene, executor: InLoopController):
    await scene.execution("web", sim=LONG)
    await scene.started("web")
    await scene.kube.delete(PR, scene.runs_namespace, (await scene.run(scene.target("web")))["metadata"]["name"])
    status = await scene.phase("web", "Failed")
    details = status["failureDetails"]
    assert details["reason"] == "Unknown"
    assert details["wasExecutionFailure"] is True, "it had started, so the cluster may have changed"
    assert "deleted" in details["message"]
    assert "executionTimeBeforeFailure" in details


async def test_a_pipeline_run_deleted_before_it_started_is_not_an_execution_failure(
    scene: Scene, start_executor: StartExecutor
):
    await start_executor()  # no Tekton: the run never starts
    await scene.execution("web")
    await scene.phase("web", "Running")
    await scene.kube.delete(PR, scene.runs_namespace, (await scene.run(scene.target("web")))["metadata"]["name"])
    details = (await scene.phase("web", "Failed"))["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("Unknown", False)


@pytest.mark.parametrize("when", ["running", "completed"])
async def test_deleting_an_execution_deletes_its_run_then_lets_it_go(
    scene: Scene, executor: InLoopController, when: str
):
    target = scene.target("web")
    if when == "running":
        await scene.execution("web", sim=LONG)
        await scene.started("web")
    else:
        await scene.execution("web")
        await scene.phase("web", "Completed")
    assert await scene.task_runs(), "the run has TaskRuns"
    await scene.kube.delete(WFE, scene.namespace, "web")
    await eventually(lambda: _gone(scene, "web"), what="the execution to be gone")
    assert not await scene.run_exists(target)
    deletes = [
        r
        for r in scene.sandbox.admin.audit(user=USERS["executor"])
        if (r.verb, r.resource, r.namespace) == ("delete", "pipelineruns", scene.runs_namespace)
    ]
    assert 200 in [r.code for r in deletes], "the executor deleted it"
    await eventually(lambda: _no_task_runs(scene), what="the run's TaskRuns to be collected")


async def _gone(scene: Scene, name: str) -> bool:
    try:
        await scene.get(name)
    except ApiError as error:
        if error.not_found:
            return True
        raise
    return False


async def _no_task_runs(scene: Scene) -> bool:
    return not await scene.task_runs()
