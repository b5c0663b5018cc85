"""SPEC 4.5: never two live WorkflowExecutions for one target, however many requests arrive at once."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.testing import SandboxHandle
from tests.integration.helpers import eventually
from tests.integration.orchestrator.conftest import Scene, StartOrchestrator

REQUESTS = 50


def execution_creates(sandbox: SandboxHandle, namespace: str) -> list[int]:
    """The response codes of every WorkflowExecution create in `namespace`, in order."""
    return [
        r.code
        for r in sandbox.admin.audit()
        if (r.verb, r.resource, r.namespace) == ("create", "workflowexecutions", namespace)
    ]


async def test_fifty_requests_for_one_target_at_once_make_exactly_one_execution(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle
):
    await start_orchestrator(workers=8, recently_remediated_cooldown="1ms")
    names = [f"rr-{i:02d}" for i in range(REQUESTS)]
    await asyncio.gather(*(scene.request(name, fingerprint_seed=name) for name in names))

    async def routed() -> dict[str, str]:
        statuses = {name: await scene.status(name) for name in names}
        return {n: s["phase"] for n, s in statuses.items()} if all(s.get("phase") for s in statuses.values()) else {}

    phases = await eventually(routed, timeout=30, what="every request routed")
    executing = [name for name, phase in phases.items() if phase == "Executing"]
    assert len(executing) == 1, phases
    assert execution_creates(sandbox, scene.namespace) == [201], "one create, never a second attempt"
    for name in names:
        if name != executing[0]:
            status = await scene.status(name)
            assert status["blockReason"] == "ResourceBusy"
            assert status["blockingWorkflowExecution"] == await scene.execution_of(executing[0])

    # When it ends, exactly one of the waiting requests runs next; the rest wait on that one.
    await scene.complete(executing[0])
    await scene.phase(executing[0], "Completed")

    async def next_one() -> list[str]:
        running = [n for n in names if n != executing[0] and (await scene.status(n)).get("phase") == "Executing"]
        return running

    (second,) = await eventually(next_one, timeout=30, what="the next request to run")
    assert execution_creates(sandbox, scene.namespace) == [201, 201]
    running = await scene.execution_of(second)
    for name in names:
        if name not in (executing[0], second):
            await scene.until(name, lambda s: s.get("blockingWorkflowExecution") == running, f"waiting on {second}")


@pytest.mark.sandbox_only
@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_create_whose_answer_is_lost_still_holds_the_target(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle, when: str
):
    """A 500 on create: it may or may not have landed (`after`: it did). Either way one execution, no second."""
    await sandbox.admin.aio.fail_requests(
        code=500, count=1, when=when, verb="create", resource="workflowexecutions", namespace=scene.namespace
    )
    await start_orchestrator()
    await asyncio.gather(scene.request("rr-a", fingerprint_seed="a"), scene.request("rr-b", fingerprint_seed="b"))
    await asyncio.gather(
        scene.until("rr-a", lambda s: s.get("phase") in ("Executing", "Blocked"), "routed"),
        scene.until("rr-b", lambda s: s.get("phase") in ("Executing", "Blocked"), "routed"),
    )

    async def settled() -> dict[str, str] | None:
        phases = {n: (await scene.status(n)).get("phase") for n in ("rr-a", "rr-b")}
        return phases if sorted(phases.values()) == ["Blocked", "Executing"] else None

    phases = await eventually(settled, timeout=20, what="one executing, one blocked")
    (running,) = [n for n, p in phases.items() if p == "Executing"]
    (waiting,) = [n for n, p in phases.items() if p == "Blocked"]
    wfe = await scene.execution_of(running)
    assert (await scene.status(waiting))["blockingWorkflowExecution"] == wfe
    assert [e["metadata"]["name"] for e in await scene.executions()] == [wfe]
    codes = execution_creates(sandbox, scene.namespace)
    assert codes.count(500) == 1 and codes.count(201) == (1 if when == "before" else 0), codes
