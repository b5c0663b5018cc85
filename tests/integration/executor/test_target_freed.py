"""Issue 18 item 3, both controllers in this loop and no Tekton at all: a request whose run never starts times out,
and the next request on its target is not left Blocked ResourceBusy for good, because the executor ends the
execution at its own deadline."""

from __future__ import annotations

from typing import Any

from shared.models import RemediationRequest
from tests import factories
from tests.integration.executor.conftest import WFE, Scene, StartExecutor
from tests.integration.helpers import eventually
from tests.integration.inloop import Start

RR = RemediationRequest.RESOURCE


def request(name: str, namespace: str, signal: str) -> dict[str, Any]:
    return factories.remediation_request(
        name,
        namespace,
        signal=signal,
        target=("Deployment", "web", namespace),
        bundle="registry.example.com/workflows/restart-pods:v1",
        timeouts={"executing": "1s"},
    )


async def test_a_run_tekton_never_starts_does_not_hold_its_target_for_the_next_request(
    scene: Scene, start_executor: StartExecutor, start_orchestrator: Start
):
    await start_orchestrator()
    await start_executor(timeout_grace=0)
    kube, namespace = scene.kube, scene.namespace
    await kube.create(RR, request("first", namespace, "HighMemory"))

    async def phase(name: str, *phases: str) -> dict[str, Any] | None:
        status = (await kube.get(RR, namespace, name)).get("status") or {}
        return status if status.get("phase") in phases else None

    first = await eventually(lambda: phase("first", "TimedOut"), what="the first request to time out")
    details = (await scene.phase(first["workflowExecutionRef"]["name"], "Failed"))["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("DeadlineExceeded", False)
    await kube.create(RR, request("second", namespace, "HighLatency"))
    await eventually(lambda: phase("second", "Executing", "TimedOut"), what="the second request to run")
    executions = (await kube.list(WFE, namespace))["items"]
    assert len(executions) == 2, "the second request got its own execution"
