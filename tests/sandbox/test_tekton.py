"""The Tekton simulator (sandbox/tekton.py) against the sandbox: it drives PipelineRuns as their SIM_* parameters
say, writes TaskRuns as Tekton would, honours timeouts.pipeline, and a restarted simulator carries on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from sandbox.stack import USERS
from sandbox.testing import SandboxHandle
from shared.kubetime import parse_time
from shared.models import PipelineRun, TaskRun
from shared.runtime.client import KubeClient
from shared.runtime.store import KubeDict
from tests.integration.helpers import eventually
from tests.integration.inloop import InLoopSimulator, start_simulator

PR = PipelineRun.RESOURCE
TR = TaskRun.RESOURCE
Start = Callable[[], Awaitable[InLoopSimulator]]


@pytest.fixture
async def start_tekton(sandbox: SandboxHandle, namespace: str) -> AsyncIterator[Start]:
    running: list[InLoopSimulator] = []

    async def start() -> InLoopSimulator:
        simulator = await start_simulator(sandbox.kubeconfig_for(USERS["tekton"]), [namespace], duration=0.2)
        running.append(simulator)
        return simulator

    yield start
    for simulator in running:
        await simulator.stop()


async def create_run(kube: KubeClient, namespace: str, name: str, timeout: str | None = None, **sim: str) -> KubeDict:
    spec: dict[str, Any] = {
        "pipelineRef": {"resolver": "bundles", "params": [{"name": "bundle", "value": "registry.example.com/w:1"}]},
        "params": [{"name": f"SIM_{key.upper()}", "value": value} for key, value in sim.items()],
    }
    if timeout:
        spec["timeouts"] = {"pipeline": timeout}
    body = {"apiVersion": PR.api_version, "kind": PR.kind, "metadata": {"name": name}, "spec": spec}
    return await kube.create(PR, body, namespace)


def succeeded(run: KubeDict) -> dict[str, Any]:
    (condition,) = [c for c in run["status"]["conditions"] if c["type"] == "Succeeded"]
    return condition


async def finished(kube: KubeClient, namespace: str, name: str) -> KubeDict:
    async def done() -> KubeDict | None:
        run = await kube.get(PR, namespace, name)
        conditions = (run.get("status") or {}).get("conditions") or []
        return run if any(c["status"] in ("True", "False") for c in conditions) else None

    return await eventually(done, what=f"PipelineRun {name} to finish")


async def task_runs(kube: KubeClient, namespace: str) -> dict[str, KubeDict]:
    return {t["metadata"]["labels"]["tekton.dev/pipelineTask"]: t for t in (await kube.list(TR, namespace))["items"]}


def ran_for(run: KubeDict) -> timedelta:
    return parse_time(run["status"]["completionTime"]) - parse_time(run["status"]["startTime"])


async def test_a_run_succeeds_after_its_duration_with_one_task_run_per_task(
    kube: KubeClient, namespace: str, start_tekton: Start
):
    await start_tekton()
    created = await create_run(kube, namespace, "ok", duration="0.3", tasks="3")
    run = await finished(kube, namespace, "ok")
    condition = succeeded(run)
    assert (condition["status"], condition["reason"]) == ("True", "Succeeded")
    assert condition["message"] == "Tasks Completed: 3 (Failed: 0, Cancelled 0), Skipped: 0"
    assert ran_for(run) == timedelta(seconds=0.3)
    assert [c["pipelineTaskName"] for c in run["status"]["childReferences"]] == ["task-1", "task-2", "task-3"]
    assert run["status"]["pipelineSpec"]["tasks"] == [{"name": "task-1"}, {"name": "task-2"}, {"name": "task-3"}]
    children = await task_runs(kube, namespace)
    assert sorted(children) == ["task-1", "task-2", "task-3"]
    for task_run in children.values():
        assert task_run["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        assert succeeded(task_run)["status"] == "True"
        assert task_run["status"]["steps"][0]["terminated"]["exitCode"] == 0


async def test_a_failed_run_carries_the_reason_and_message_it_was_given(
    kube: KubeClient, namespace: str, start_tekton: Start
):
    await start_tekton()
    await create_run(kube, namespace, "bad", outcome="Failed", reason="PipelineRunCancelled", message="cancelled")
    await create_run(kube, namespace, "plain", outcome="Failed")
    condition = succeeded(await finished(kube, namespace, "bad"))
    assert (condition["status"], condition["reason"]) == ("False", "PipelineRunCancelled")
    assert condition["message"] == "cancelled"
    plain = succeeded(await finished(kube, namespace, "plain"))
    assert (plain["reason"], plain["message"]) == ("Failed", "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0")


async def test_the_failed_task_run_carries_the_failed_step_and_its_exit_code(
    kube: KubeClient, namespace: str, start_tekton: Start
):
    await start_tekton()
    await create_run(
        kube, namespace, "bad", outcome="Failed", tasks="3", failed_task="task-2", failed_step="apply", exit_code="137"
    )
    await finished(kube, namespace, "bad")
    children = await task_runs(kube, namespace)
    assert succeeded(children["task-1"])["status"] == "True"
    failed = children["task-2"]
    assert (succeeded(failed)["status"], succeeded(failed)["reason"]) == ("False", "Failed")
    (step,) = failed["status"]["steps"]
    assert (step["name"], step["terminated"]["exitCode"]) == ("apply", 137)
    assert "conditions" not in (children["task-3"].get("status") or {}), "nothing after the failed task ends"


async def test_fail_before_start_ends_the_run_with_a_start_time_and_no_task_runs(
    kube: KubeClient, namespace: str, start_tekton: Start
):
    """Real Tekton sets startTime on its first reconcile, before it resolves the pipeline: an unresolvable bundle
    gives a run with a start time and no child references."""
    await start_tekton()
    await create_run(kube, namespace, "unresolvable", outcome="FailBeforeStart")
    run = await finished(kube, namespace, "unresolvable")
    condition = succeeded(run)
    assert (condition["status"], condition["reason"]) == ("False", "CouldntGetPipeline")
    assert "startTime" in run["status"] and "childReferences" not in run["status"]
    assert ran_for(run) >= timedelta(0)
    assert await task_runs(kube, namespace) == {}


async def test_a_cancelled_run_ends_cancelled_with_its_task_runs(kube: KubeClient, namespace: str, start_tekton: Start):
    """spec.status Cancelled (what the executor writes at its deadline) ends the run as Tekton does."""
    await start_tekton()
    await create_run(kube, namespace, "stuck", outcome="Hang")
    await eventually(lambda: _started(kube, namespace, "stuck"), what="the run to start")
    await kube.patch(PR, namespace, "stuck", {"spec": {"status": "Cancelled"}})
    run = await finished(kube, namespace, "stuck")
    condition = succeeded(run)
    assert (condition["status"], condition["reason"]) == ("False", "Cancelled")
    assert condition["message"] == 'PipelineRun "stuck" was cancelled'
    assert {t: succeeded(r)["reason"] for t, r in (await task_runs(kube, namespace)).items()} == {
        "task-1": "TaskRunCancelled",
        "task-2": "TaskRunCancelled",
    }


async def test_an_ignored_run_is_never_touched(kube: KubeClient, namespace: str, start_tekton: Start):
    """As if Tekton were down for this run: what the executor's own deadline is for."""
    await create_run(kube, namespace, "ignored", outcome="Ignore")
    simulator = await start_tekton()  # its initial list holds the ignored run: reconciled before any later one
    await create_run(kube, namespace, "after")
    await finished(kube, namespace, "after")
    await eventually(lambda: len(simulator.simulator.controller.queue) == 0 or None, what="the queue to drain")
    assert not (await kube.get(PR, namespace, "ignored")).get("status")


async def test_a_run_longer_than_timeouts_pipeline_times_out_at_the_timeout(
    kube: KubeClient, namespace: str, start_tekton: Start
):
    await start_tekton()
    await create_run(kube, namespace, "slow", timeout="300ms", duration="30", exit_code="143")
    run = await finished(kube, namespace, "slow")
    condition = succeeded(run)
    assert (condition["status"], condition["reason"]) == ("False", "PipelineRunTimeout")
    assert "timeout" in condition["message"]
    assert ran_for(run) == timedelta(milliseconds=300)
    last = (await task_runs(kube, namespace))["task-2"]
    assert last["status"]["steps"][0]["terminated"]["exitCode"] == 143


async def test_a_restarted_simulator_carries_on_from_the_runs_status(
    kube: KubeClient, namespace: str, start_tekton: Start
):
    first = await start_tekton()
    await create_run(kube, namespace, "long", duration="1")
    started = await eventually(lambda: _started(kube, namespace, "long"), what="the run to start")
    await first.stop()
    assert succeeded(await kube.get(PR, namespace, "long"))["status"] == "Unknown", "stopped mid-run"
    await create_run(kube, namespace, "while-down")  # created while no simulator runs
    await start_tekton()
    run = await finished(kube, namespace, "long")
    assert run["status"]["startTime"] == started["status"]["startTime"], "not started again"
    assert ran_for(run) == timedelta(seconds=1), "ends when the first simulator would have ended it"
    assert succeeded(run)["status"] == "True"
    assert succeeded(await finished(kube, namespace, "while-down"))["status"] == "True"
    assert len([t for t in (await kube.list(TR, namespace))["items"] if "long" in t["metadata"]["name"]]) == 2


async def _started(kube: KubeClient, namespace: str, name: str) -> KubeDict | None:
    run = await kube.get(PR, namespace, name)
    return run if (run.get("status") or {}).get("startTime") else None
