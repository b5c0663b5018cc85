"""SPEC 4.4: after a restart the initial list re-arms every pending timer; blocks end at the same `blockedUntil`.

The orchestrator runs as a real process (`python -m orchestrator`), stopped with SIGTERM and started again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.stack import USERS, Stack
from sandbox.testing import SandboxHandle
from shared.kubetime import parse_time
from tests.integration.helpers import eventually
from tests.integration.orchestrator.conftest import Scene, StartOrchestrator

pytestmark = pytest.mark.slow


async def test_pending_timers_survive_a_restart(scene: Scene, sandbox: SandboxHandle, tmp_path: Path):
    stack = Stack(sandbox.kubeconfig_for, tmp_path)
    settings = {
        "watched_namespaces": scene.namespace,
        "recently_remediated_cooldown": "5s",
        "consecutive_failure_threshold": "1",
        "consecutive_failure_cooldown": "5s",
    }
    first = stack.orchestrator("orchestrator-1", **settings).start()
    try:
        first.wait_ready()
        # Two time-based blocks: RecentlyRemediated on target web, ConsecutiveFailures on fingerprint "flaky".
        await scene.request("done", fingerprint_seed="done")
        await scene.request("flaky-1", fingerprint_seed="flaky", target=("Deployment", "api", "default"))
        await scene.phase("done", "Executing")
        await scene.phase("flaky-1", "Executing")
        await scene.complete("done")
        await scene.fail("flaky-1", was_execution_failure=False)
        await scene.phase("flaky-1", "Failed")
        await scene.request("again", fingerprint_seed="again")
        await scene.request("flaky-2", fingerprint_seed="flaky", target=("Deployment", "api", "default"))
        again = await scene.blocked("again", "RecentlyRemediated")
        flaky = await scene.blocked("flaky-2", "ConsecutiveFailures")
        assert first.terminate() == 0
    finally:
        stack.stop()

    second = stack.orchestrator("orchestrator-2", **settings).start()
    try:
        second.wait_ready()
        executing = await scene.phase("again", "Executing", timeout=15)
        failed = await scene.phase("flaky-2", "Failed", timeout=15)
        assert failed["failurePhase"] == "Blocked" and failed["outcome"] == "NotExecuted"
        # The blocks ended at their original times: never early, and from the blockedUntil written before.
        creates = [
            r
            for r in sandbox.admin.audit(user=USERS["orchestrator"])
            if (r.verb, r.resource, r.namespace, r.code) == ("create", "workflowexecutions", scene.namespace, 201)
        ]
        assert len(creates) == 3, "done, flaky-1, and again (last); never flaky-2"
        assert creates[-1].time >= parse_time(again["blockedUntil"]).timestamp()
        assert executing["workflowExecutionRef"]["name"].startswith("again-")
        assert parse_time(failed["completionTime"]) >= parse_time(flaky["blockedUntil"])
        metrics = second.metrics()
        assert 'kubernaut_remediationorchestrator_blocked_cooldown_expired_total{namespace="' in metrics
    finally:
        assert stack.stop()["orchestrator-2"] == 0


async def test_a_block_that_expired_while_no_replica_ran_is_late_only_from_when_one_started(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    """blocked_expiry_lag_seconds measures how late a replica that could act handled an expiry (SPEC 4.4's timer
    precision); the time no replica ran is not lag of ours (the leader and availability alerts cover it)."""
    first = await start_orchestrator(recently_remediated_cooldown="2s")
    until = await _again_blocked_recently_remediated(scene)
    await first.shutdown()
    await eventually(lambda: datetime.now(UTC) > until + timedelta(seconds=3), timeout=10, what="the block to expire")

    second = await start_orchestrator(recently_remediated_cooldown="2s")
    started = second.manager.controllers[0].started_at
    await scene.phase("again", "Executing")
    handled_within = (datetime.now(UTC) - started).total_seconds()
    assert second.metric("blocked_expiry_lag_seconds_count") == 1
    assert second.metric("blocked_expiry_lag_seconds_sum") <= handled_within


async def test_expiry_lag_is_the_first_look_at_an_expired_block_not_when_the_api_let_the_decision_land(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle
):
    orchestrator = await start_orchestrator(recently_remediated_cooldown="2s")
    until = await _again_blocked_recently_remediated(scene)
    # The decision at expiry creates a WorkflowExecution: fail that 8 times (retries back off 5 ms doubling: ~1.3 s).
    sandbox.admin.fail_requests(code=500, count=8, verb="create", resource="workflowexecutions")
    status = await scene.phase("again", "Executing", timeout=20)
    routed = next(c for c in status["conditions"] if c["type"] == "Routed")
    landed = (parse_time(routed["lastTransitionTime"]) - until).total_seconds()
    assert orchestrator.metric("blocked_expiry_lag_seconds_count") == 1
    assert orchestrator.metric("blocked_expiry_lag_seconds_sum") < landed - 1.0
    assert (
        orchestrator.metric("blocked_cooldown_expired_total", namespace=scene.namespace, reason="RecentlyRemediated")
        == 1
    )


async def _again_blocked_recently_remediated(scene: Scene) -> datetime:
    """`done` runs and completes on the target; `again`, the same workflow, is then blocked; its blockedUntil."""
    await scene.request("done", fingerprint_seed="done")
    await scene.phase("done", "Executing")
    await scene.complete("done")
    await scene.phase("done", "Completed")
    await scene.request("again", fingerprint_seed="again")
    return parse_time((await scene.blocked("again", "RecentlyRemediated"))["blockedUntil"])
