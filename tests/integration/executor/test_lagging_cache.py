"""The executor's PipelineRun cache may lag behind its WorkflowExecution cache (two watches, two streams): a run it
has not seen yet, or the previous run on the same target still in its cache, is not a deleted run.

Found by the chaos suite: after a watch drop, WorkflowExecutions whose runs were alive failed with "PipelineRun ...
was deleted while the workflow was starting".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from executor.app import setup
from executor.metrics import PREFIX
from executor.settings import ExecutorSettings
from sandbox.testing import SandboxHandle
from shared.kubetime import format_time
from shared.models import PipelineRun, WorkflowExecution
from shared.runtime.client import KubeClient
from shared.runtime.manager import Manager
from tests import factories
from tests.integration.helpers import create_namespace, delete_namespace, eventually

pytestmark = pytest.mark.sandbox_only

WFE = WorkflowExecution.RESOURCE
PR = PipelineRun.RESOURCE


@pytest.fixture
async def execution_namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = await create_namespace(kube, "runs")
    try:
        yield name
    finally:
        await delete_namespace(kube, name)


@pytest.fixture
async def executor(sandbox: SandboxHandle, namespace: str, execution_namespace: str) -> AsyncIterator[Manager]:
    settings = ExecutorSettings(
        kubeconfig=sandbox.kubeconfig_path,
        watched_namespaces=[namespace],
        execution_namespace=execution_namespace,
        bind_address="127.0.0.1",
        metrics_port=0,
        health_port=0,
        leader_election=False,
    )
    client = await KubeClient.connect(sandbox.kubeconfig_path, user_agent="kubernaut-executor")
    manager = Manager(client, settings, component="kubernaut-executor", metrics_prefix=PREFIX)
    setup(manager, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    try:
        await eventually(lambda: all(c.running for c in manager.controllers), what="the executor to start")
        yield manager
    finally:
        sandbox.admin.clear_faults()
        stop.set()
        await asyncio.wait_for(task, 15)
        await client.close()


async def _phase(kube: KubeClient, namespace: str, name: str, phase: str) -> dict:
    async def reached() -> dict | None:
        status = (await kube.get(WFE, namespace, name)).get("status") or {}
        return status if status.get("phase") == phase else None

    return await eventually(reached, timeout=15, what=f"{name} {phase}")


async def _finish_run(kube: KubeClient, namespace: str, name: str) -> None:
    """Play Tekton: the run succeeds."""
    now = format_time(datetime.now(UTC))
    condition = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "lastTransitionTime": now}
    await kube.patch_status(PR, namespace, name, {"startTime": now, "completionTime": now, "conditions": [condition]})


async def test_a_run_replacing_the_previous_one_on_its_target_is_followed_before_the_cache_sees_it(
    executor: Manager, kube: KubeClient, sandbox: SandboxHandle, namespace: str, execution_namespace: str
):
    await kube.create(WFE, factories.workflow_execution("first", namespace, rr_name="first"))
    first = await _phase(kube, namespace, "first", "Running")
    run = first["pipelineRunRef"]["name"]
    await _finish_run(kube, execution_namespace, run)
    await _phase(kube, namespace, "first", "Completed")

    # From here on the executor's PipelineRun cache holds the first run: its watch cannot come back.
    sandbox.admin.fail_requests(code=500, seconds=60, verb="watch", resource="pipelineruns")
    sandbox.admin.drop_watches()
    await kube.create(WFE, factories.workflow_execution("second", namespace, rr_name="second"))
    second = await _phase(kube, namespace, "second", "Running")
    assert second["pipelineRunRef"]["name"] == run, "the per-target name: the second run replaced the first"

    sandbox.admin.clear_faults()
    await _finish_run(kube, execution_namespace, run)
    completed = await _phase(kube, namespace, "second", "Completed")
    assert "failureDetails" not in completed
