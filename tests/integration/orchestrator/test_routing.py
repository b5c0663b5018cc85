"""Every routing row of SPEC 4.2 over real HTTP and watches, with each way a block ends.

The orchestrator runs in the test's loop; the test plays the executor (WorkflowExecution status patches).
"""

from __future__ import annotations

from datetime import timedelta

from orchestrator.view import workflow_execution_name
from shared.kubetime import parse_time
from tests.integration.helpers import eventually
from tests.integration.orchestrator.conftest import NR, RR, WFE, Scene, StartOrchestrator

ACK = "kubernaut.ai/execution-failure-acknowledged"
UNBLOCK = "kubernaut.ai/unblock"


async def test_a_request_executes_and_completes(scene: Scene, start_orchestrator: StartOrchestrator):
    orchestrator = await start_orchestrator()
    rr = await scene.request("rr-1")
    status = await scene.phase("rr-1", "Executing")
    (wfe,) = await scene.executions()
    assert (
        status["workflowExecutionRef"]["name"]
        == wfe["metadata"]["name"]
        == workflow_execution_name("rr-1", rr["metadata"]["uid"])
    )
    assert wfe["spec"]["targetResource"] == "default/deployment/web"
    assert wfe["metadata"]["ownerReferences"][0]["uid"] == rr["metadata"]["uid"]
    assert wfe["metadata"]["labels"]["kubernaut.ai/remediation-request"] == "rr-1"
    await scene.run("rr-1")
    await scene.complete("rr-1")
    status = await scene.phase("rr-1", "Completed")
    assert status["outcome"] == "Remediated"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Routed": "True",
        "Blocked": "False",
        "Succeeded": "True",
    }
    await eventually(lambda: _has_events(scene, "rr-1", {"WorkflowExecutionCreated", "Completed"}), what="events")
    assert orchestrator.metric("routing_decisions_total", namespace=scene.namespace, decision="Execute", reason="") == 1
    assert (
        orchestrator.metric(
            "phase_transitions_total", namespace=scene.namespace, from_phase="Executing", to_phase="Completed"
        )
        == 1
    )


async def _has_events(scene: Scene, name: str, reasons: set[str]) -> bool:
    return reasons <= set(await scene.events(name))


async def test_previous_execution_failed_needs_manual_review_once_per_incident(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox
):
    """The scenario of the issue: a failed run on T blocks every later request for T until acknowledged."""
    await start_orchestrator()
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.run("rr-1")
    await scene.fail("rr-1", reason="TaskFailed", was_execution_failure=True)
    await scene.phase("rr-1", "Failed")
    first = await scene.execution_of("rr-1")

    for name in ("rr-2", "rr-3"):
        await scene.request(name, fingerprint_seed=name)
        status = await scene.phase(name, "Failed")
        assert status["skipReason"] == "PreviousExecutionFailed"
        assert status["requiresManualReview"] is True
        assert status["outcome"] == "ManualReviewRequired"
        assert status["blockingWorkflowExecution"] == first
        assert not status.get("workflowExecutionRef")
    assert [w["metadata"]["name"] for w in await scene.executions()] == [first], "no WFE for rr-2 or rr-3"
    creates = [
        r
        for r in sandbox.admin.audit()
        if (r.resource, r.verb, r.namespace) == ("workflowexecutions", "create", scene.namespace)
    ]
    assert len(creates) == 1, "no create was ever attempted for rr-2 or rr-3"
    (notice,) = await scene.notifications()
    assert notice["spec"]["type"] == "manual-review" and notice["spec"]["priority"] == "critical"
    for name in ("rr-2", "rr-3"):
        refs = (await scene.status(name))["notificationRequestRefs"]
        assert [r["name"] for r in refs] == [notice["metadata"]["name"]], "one notice for the incident"
    assert "ManualReviewRequired" in await scene.events("rr-2")

    # Acknowledged: the next request for T runs.
    await scene.annotate(WFE, first, ACK, "alice: rolled back by hand")
    await scene.request("rr-4", fingerprint_seed="fourth")
    await scene.phase("rr-4", "Executing")


async def test_deleting_the_failed_execution_acknowledges_it(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator()
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.fail("rr-1")
    await scene.phase("rr-1", "Failed")
    await scene.kube.delete(WFE, scene.namespace, await scene.execution_of("rr-1"))
    await eventually(lambda: _no_executions(scene), what="the WFE to go")
    await scene.request("rr-2", fingerprint_seed="second")
    await scene.phase("rr-2", "Executing")


async def _no_executions(scene: Scene) -> bool:
    return not await scene.executions()


async def test_a_failure_before_execution_does_not_need_review(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator()
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.fail("rr-1", reason="ImagePullBackOff", was_execution_failure=False)
    status = await scene.phase("rr-1", "Failed")
    assert status["failurePhase"] == "WorkflowExecution" and status["failureReason"] == "ImagePullBackOff"
    await scene.request("rr-2", fingerprint_seed="second")
    await scene.phase("rr-2", "Executing")


async def test_duplicates_wait_and_inherit_completion(scene: Scene, start_orchestrator: StartOrchestrator):
    orchestrator = await start_orchestrator()
    await scene.request("rr-1")
    await scene.phase("rr-1", "Executing")
    await scene.request("rr-2")  # same fingerprint
    status = await scene.blocked("rr-2", "DuplicateInProgress")
    assert status["duplicateOf"] == "rr-1" and "blockedUntil" not in status
    await scene.until("rr-1", lambda s: s.get("duplicateCount") == 1, "duplicateCount 1")
    assert orchestrator.metric("current_blocked", namespace=scene.namespace, reason="DuplicateInProgress") == 1
    await scene.complete("rr-1")
    status = await scene.phase("rr-2", "Completed")
    assert status["outcome"] == "InheritedCompleted"
    assert len(await scene.executions()) == 1
    assert orchestrator.metric("current_blocked", namespace=scene.namespace, reason="DuplicateInProgress") == 0


async def test_duplicates_inherit_failure(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator()
    await scene.request("rr-1")
    await scene.phase("rr-1", "Executing")
    await scene.request("rr-2")
    await scene.blocked("rr-2", "DuplicateInProgress")
    await scene.fail("rr-1", reason="OOMKilled")
    status = await scene.phase("rr-2", "Failed")
    assert status["outcome"] == "InheritedFailed"
    assert status["failurePhase"] == "Deduplicated" and status["failureReason"] == "OOMKilled"


async def test_a_duplicate_whose_original_is_deleted_routes_afresh(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator()
    await scene.request("rr-1")
    await scene.phase("rr-1", "Executing")
    await scene.request("rr-2")
    await scene.blocked("rr-2", "DuplicateInProgress")
    await scene.kube.delete(RR, scene.namespace, "rr-1")  # its WFE goes with it (owner reference)
    status = await scene.phase("rr-2", "Executing")
    assert status["workflowExecutionRef"]["name"].startswith("rr-2-")
    assert not status.get("duplicateOf")


async def test_resource_busy_then_recently_remediated_then_runs_at_expiry(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    orchestrator = await start_orchestrator(recently_remediated_cooldown="2s")
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.request("rr-2", fingerprint_seed="second")  # same target, same workflow
    status = await scene.blocked("rr-2", "ResourceBusy")
    first = await scene.execution_of("rr-1")
    assert status["blockingWorkflowExecution"] == first and "blockedUntil" not in status
    await scene.complete("rr-1")
    status = await scene.blocked("rr-2", "RecentlyRemediated")
    completed = parse_time((await scene.kube.get(WFE, scene.namespace, first))["status"]["completionTime"])
    assert parse_time(status["blockedUntil"]) == completed + timedelta(seconds=2)
    status = await scene.phase("rr-2", "Executing", timeout=10)
    assert (
        orchestrator.metric("blocked_cooldown_expired_total", namespace=scene.namespace, reason="RecentlyRemediated")
        == 1
    )
    assert orchestrator.metric("blocked_total", namespace=scene.namespace, reason="ResourceBusy") == 1
    assert orchestrator.metric("blocked_total", namespace=scene.namespace, reason="RecentlyRemediated") == 1


async def test_another_workflow_on_a_recently_remediated_target_runs_at_once(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    await start_orchestrator(recently_remediated_cooldown="1h")
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.complete("rr-1")
    await scene.phase("rr-1", "Completed")
    await scene.request("rr-2", fingerprint_seed="second", workflow_id="scale-up")
    await scene.phase("rr-2", "Executing")


async def test_resource_busy_ends_when_the_blocking_execution_vanishes(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    await start_orchestrator()
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.request("rr-2", fingerprint_seed="second")
    await scene.blocked("rr-2", "ResourceBusy")
    await scene.kube.delete(WFE, scene.namespace, await scene.execution_of("rr-1"))
    status = await scene.phase("rr-1", "Failed")
    assert "deleted" in status["message"]
    await scene.phase("rr-2", "Executing")


async def test_manual_unblock_reroutes_at_once(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator(recently_remediated_cooldown="1h")
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.complete("rr-1")
    await scene.request("rr-2", fingerprint_seed="second")
    await scene.blocked("rr-2", "RecentlyRemediated")
    await scene.annotate(RR, "rr-2", UNBLOCK, "bob: verified by hand")
    await scene.phase("rr-2", "Executing")
    assert "Unblocked" in {c["reason"] for c in (await scene.status("rr-2"))["conditions"]}


async def test_backoff_then_consecutive_failures_then_expiry(scene: Scene, start_orchestrator: StartOrchestrator):
    """Failure history is per fingerprint: each new request reads it from the newest failed one (SPEC 4.3)."""
    orchestrator = await start_orchestrator(
        consecutive_failure_threshold=2, consecutive_failure_cooldown="4s", backoff_base="1s", backoff_max="2s"
    )
    fingerprint = {"fingerprint_seed": "flapping"}
    await scene.request("rr-1", **fingerprint)
    await scene.phase("rr-1", "Executing")
    await scene.fail("rr-1", reason="ImagePullBackOff", was_execution_failure=False)
    status = await scene.phase("rr-1", "Failed")
    assert status["consecutiveFailureCount"] == 1 and status["nextAllowedExecution"]

    await scene.request("rr-2", **fingerprint)
    status = await scene.blocked("rr-2", "ExponentialBackoff")
    assert status["blockedUntil"] == (await scene.status("rr-1"))["nextAllowedExecution"]
    await scene.phase("rr-2", "Executing", timeout=10)  # at expiry
    await scene.fail("rr-2", reason="ImagePullBackOff", was_execution_failure=False)
    status = await scene.phase("rr-2", "Failed")
    assert status["consecutiveFailureCount"] == 2

    await scene.request("rr-3", **fingerprint)
    status = await scene.blocked("rr-3", "ConsecutiveFailures")
    last_failure = parse_time((await scene.status("rr-2"))["completionTime"])
    assert parse_time(status["blockedUntil"]) == last_failure + timedelta(seconds=4)
    (escalation,) = await scene.notifications()
    assert escalation["spec"]["type"] == "escalation" and escalation["spec"]["priority"] == "high"
    assert "Blocked" in await scene.events("rr-3")

    status = await scene.phase("rr-3", "Failed", timeout=10)
    assert status["failurePhase"] == "Blocked" and status["outcome"] == "NotExecuted"
    types = sorted(n["spec"]["type"] for n in await scene.notifications())
    assert types == ["escalation", "status-update"]
    assert (
        orchestrator.metric("blocked_cooldown_expired_total", namespace=scene.namespace, reason="ConsecutiveFailures")
        == 1
    )
    assert len(await scene.executions()) == 2, "nothing ran for rr-3"


async def test_executing_too_long_times_out_with_an_escalation(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator()
    await scene.request("rr-1", timeouts={"executing": "2s"})
    await scene.phase("rr-1", "Executing")
    await scene.run("rr-1")
    status = await scene.phase("rr-1", "TimedOut", timeout=10)
    assert status["failurePhase"] == "Timeout"
    (notice,) = await scene.notifications()
    assert notice["spec"]["type"] == "escalation" and notice["spec"]["priority"] == "critical"


async def test_a_semantically_invalid_request_fails_naming_the_field(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    await start_orchestrator()
    await scene.request("bad", target=("Deploy ment", "web", "default"))
    await scene.request("good", fingerprint_seed="good")
    status = await scene.phase("bad", "Failed")
    assert status["failurePhase"] == "Routing" and "spec.targetResource.kind" in status["message"]
    await eventually(lambda: _has_events(scene, "bad", {"Failed"}), what="a Failed event")
    await scene.phase("good", "Executing")


async def test_notifications_are_owned_by_their_request(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator()
    rr = await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.fail("rr-1")
    await scene.request("rr-2", fingerprint_seed="second")
    await scene.phase("rr-2", "Failed")
    (notice,) = (await scene.kube.list(NR, scene.namespace))["items"]
    owner = notice["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "RemediationRequest" and owner["name"] == "rr-2"
    assert rr["metadata"]["uid"] != owner["uid"]
