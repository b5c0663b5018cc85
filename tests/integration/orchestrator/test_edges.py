"""Issue 17: the edges around the routing rows - namesakes, same-second duplicates, unblocked duplicates, huge
durations, values at the CRD's limits, refused status writes, and the conditions every ending carries."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.testing import SandboxHandle
from shared.runtime.client import KubeClient
from tests.integration.helpers import create_namespace, delete_namespace, eventually
from tests.integration.orchestrator.conftest import RR, WFE, Scene, StartOrchestrator

UNBLOCK = "kubernaut.ai/unblock"
TERMINAL = {"Completed", "Failed", "TimedOut", "Skipped"}


def assert_concluded(status: dict[str, Any]) -> None:
    """Issue 17.6: a terminal request carries Routed, Blocked and Succeeded, consistent with its phase, each with
    observedGeneration."""
    assert status["phase"] in TERMINAL
    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(conditions) >= {"Routed", "Blocked", "Succeeded"}, conditions
    assert conditions["Blocked"]["status"] == "False"
    assert conditions["Succeeded"]["status"] == ("True" if status["phase"] == "Completed" else "False")
    assert conditions["Routed"]["status"] == ("True" if status.get("workflowExecutionRef") else "False")
    for condition in conditions.values():
        assert condition["observedGeneration"] == status["observedGeneration"] == 1, condition


def creates(sandbox: SandboxHandle, namespace: str) -> int:
    return sum(
        1
        for r in sandbox.admin.audit()
        if (r.resource, r.verb, r.namespace, r.subresource, r.code)
        == ("workflowexecutions", "create", namespace, "", 201)
    )


# -- 1: a namesake is never adopted ----------------------------------------------------------------------------
@pytest.mark.parametrize("propagation", ["Orphan", "Background"])
async def test_a_namesake_gets_its_own_execution_and_never_adopts_the_one_left_behind(
    scene: Scene, start_orchestrator: StartOrchestrator, propagation: str
):
    await start_orchestrator()
    first = await scene.request("same", fingerprint_seed="first")
    await scene.phase("same", "Executing")
    await scene.complete("same")
    await scene.phase("same", "Completed")
    (left,) = await scene.executions()
    await scene.kube.delete(RR, scene.namespace, "same", propagation_policy=propagation)
    await eventually(lambda: _gone(scene, "same"), what="the first request to go")

    second = await scene.request(
        "same", fingerprint_seed="second", target=("Deployment", "api", "default"), workflow_id="scale-up"
    )
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    status = await scene.until("same", lambda s: s.get("phase") not in (None, "Pending"), "routed")
    assert status["phase"] == "Executing", status
    ref = status["workflowExecutionRef"]["name"]
    assert ref != left["metadata"]["name"]
    own = await scene.kube.get(WFE, scene.namespace, ref)
    assert own["spec"]["targetResource"] == "default/deployment/api"
    assert own["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]
    if propagation == "Background":  # the one left behind is collected while the new request executes
        await eventually(lambda: _no_execution(scene, left["metadata"]["name"]), what="the old WFE to be collected")
    assert (await scene.status("same"))["phase"] == "Executing", "the collected namesake is not this request's"
    await scene.complete("same")
    assert (await scene.phase("same", "Completed"))["message"].endswith(f"({scene.namespace}/{ref})")


async def _gone(scene: Scene, name: str) -> bool:
    return name not in {o["metadata"]["name"] for o in (await scene.kube.list(RR, scene.namespace))["items"]}


async def _no_execution(scene: Scene, name: str) -> bool:
    return name not in {o["metadata"]["name"] for o in await scene.executions()}


# -- 2: same-second duplicates --------------------------------------------------------------------------------
async def _same_second_pair(scene: Scene, *, two_targets: bool) -> tuple[str, str]:
    """Create two requests of one fingerprint, the later one's name sorting first, until a pair shares a second;
    return their names, earlier first."""
    for attempt in range(5):
        earlier, later = f"alert-z-{attempt}", f"alert-a-{attempt}"
        other = {"target": ("Deployment", "api", "default")} if two_targets else {}
        a = await scene.request(earlier, fingerprint_seed=f"storm-{attempt}")
        b = await scene.request(later, fingerprint_seed=f"storm-{attempt}", **other)
        if a["metadata"]["creationTimestamp"] == b["metadata"]["creationTimestamp"]:
            return earlier, later
    pytest.fail("no two requests created within one second in five attempts")


@pytest.mark.parametrize("targets", ["same target", "two targets"])
async def test_same_second_duplicates_run_once_whoever_is_routed_first(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle, targets: str
):
    """Issue 17.2: both created before the orchestrator starts, so its workers route them at the same moment; the
    later one's name sorts first. Exactly one executes, the other waits on it and inherits; one execution."""
    names = await _same_second_pair(scene, two_targets=targets == "two targets")
    await start_orchestrator()

    async def routed() -> dict[str, dict[str, Any]] | None:
        statuses = {n: await scene.status(n) for n in names}
        return statuses if all(s.get("phase") in ("Executing", "Blocked") for s in statuses.values()) else None

    statuses = await eventually(routed, what="both routed")
    (original,) = [n for n, s in statuses.items() if s["phase"] == "Executing"]
    (duplicate,) = [n for n in names if n != original]
    assert statuses[duplicate]["blockReason"] == "DuplicateInProgress", statuses[duplicate]
    assert statuses[duplicate]["duplicateOf"] == original
    await scene.complete(original)
    status = await scene.until(duplicate, lambda s: s.get("phase") in TERMINAL, "inherited")
    assert (status["phase"], status["outcome"]) == ("Completed", "InheritedCompleted")
    assert_concluded(status)
    owners = [w["metadata"]["ownerReferences"][0]["name"] for w in await scene.executions()]
    assert [o for o in owners if o in names] == [original], "one execution for the pair"


@pytest.mark.sandbox_only
async def test_a_request_whose_status_write_was_lost_after_its_execution_is_still_the_original(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle
):
    """Found by the chaos suite: the first of a same-second pair created its WorkflowExecution, but its status write
    (with its startTime) failed; the second, routed meanwhile, took the unrouted first for younger, was blocked
    ResourceBusy instead of DuplicateInProgress, and ran its own workflow after the first ended. An execution of
    its own means a request was routed, when that execution was made."""
    await start_orchestrator()
    for attempt in range(5):
        first, second = f"alert-z-{attempt}", f"alert-a-{attempt}"
        await sandbox.admin.aio.fail_requests(
            seconds=30,
            verb="patch",
            resource="remediationrequests",
            subresource="status",
            namespace=scene.namespace,
            name=first,
        )
        target = ("Deployment", f"lost-{attempt}", "default")  # each attempt on a target of its own
        a = await scene.request(first, fingerprint_seed=f"lost-{attempt}", target=target)
        await eventually(lambda f=first: _owns_execution(scene, f), what=f"{first}'s execution")
        b = await scene.request(second, fingerprint_seed=f"lost-{attempt}", target=target)
        if a["metadata"]["creationTimestamp"] == b["metadata"]["creationTimestamp"]:
            break
        await sandbox.admin.aio.clear_faults()
    else:
        pytest.fail("no two requests created within one second in five attempts")
    status = await scene.until(second, lambda s: s.get("phase") == "Blocked", "blocked")
    assert (status["blockReason"], status["duplicateOf"]) == ("DuplicateInProgress", first), status
    await sandbox.admin.aio.clear_faults()
    await scene.phase(first, "Executing")
    await scene.complete(first)
    status = await scene.until(second, lambda s: s.get("phase") in TERMINAL, "inherited")
    assert (status["phase"], status["outcome"]) == ("Completed", "InheritedCompleted"), status
    owners = [w["metadata"]["ownerReferences"][0]["name"] for w in await scene.executions()]
    assert second not in owners, "the pair ran one workflow"


async def _owns_execution(scene: Scene, name: str) -> bool:
    return any(w["metadata"]["ownerReferences"][0]["name"] == name for w in await scene.executions())


# -- 3: a manual unblock never makes a duplicate run ---------------------------------------------------------
async def test_an_unblocked_duplicate_still_inherits(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle
):
    await start_orchestrator(recently_remediated_cooldown="1h")
    await scene.request("rr-1")
    await scene.phase("rr-1", "Executing")
    await scene.request("rr-2")
    await scene.blocked("rr-2", "DuplicateInProgress")
    await scene.annotate(RR, "rr-2", UNBLOCK, "bob: hurry")
    await scene.until("rr-2", lambda s: s.get("duplicateOf") == "rr-1", "still a duplicate")
    await scene.complete("rr-1")
    status = await scene.until("rr-2", lambda s: s.get("phase") in TERMINAL, "inherited")
    assert (status["phase"], status["outcome"]) == ("Completed", "InheritedCompleted")
    assert not status.get("workflowExecutionRef")
    assert creates(sandbox, scene.namespace) == 1
    assert_concluded(status)


# -- 4: huge but schema-valid durations ----------------------------------------------------------------------
@pytest.mark.parametrize("executing", ["9999999999999h", "99999999h"])
async def test_a_huge_executing_timeout_fails_the_request_at_once_naming_the_field(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle, executing: str
):
    await start_orchestrator()
    await scene.request("huge", timeouts={"executing": executing})
    status = await scene.phase("huge", "Failed")
    assert (status["failurePhase"], status["failureReason"]) == ("Routing", "InvalidSpec")
    assert "spec.timeouts.executing" in status["message"] and executing in status["message"]
    assert_concluded(status)
    assert creates(sandbox, scene.namespace) == 0
    await scene.request("fine", fingerprint_seed="fine", timeouts={"executing": "2562047h"})
    await scene.phase("fine", "Executing")


# -- 5: values at the CRD's limits, and a refused status write ------------------------------------------------
@pytest.fixture
async def other_namespace(kube: KubeClient) -> Any:
    name = await create_namespace(kube, prefix="test-other")
    try:
        yield name
    finally:
        await delete_namespace(kube, name)


async def test_a_blocking_execution_with_a_long_name_in_another_namespace_fits_the_status(
    scene: Scene, start_orchestrator: StartOrchestrator, other_namespace: str
):
    """Issue 17.5: blockingWorkflowExecution holds namespace/name; with a 253-character name it used to be refused
    (422) on every write, so the blocked request had no status and was never woken."""
    await start_orchestrator(watched_namespaces=[scene.namespace, other_namespace])
    node = ("Node", "worker-1", None)
    long_name = "r" * 253
    await scene.request(long_name, target=node, fingerprint_seed="long")
    await scene.phase(long_name, "Executing")
    wfe = await scene.execution_of(long_name)
    assert len(wfe) == 253
    elsewhere = Scene(scene.kube, other_namespace)
    await elsewhere.request("waiting", target=node, fingerprint_seed="other", workflow_id="scale-up")
    status = await elsewhere.blocked("waiting", "ResourceBusy")
    assert status["blockingWorkflowExecution"] == f"{scene.namespace}/{wfe}"
    await scene.complete(long_name)
    await elsewhere.phase("waiting", "Executing")


@pytest.mark.sandbox_only
async def test_a_refused_status_write_never_leaves_a_request_without_a_phase(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle
):
    """A 422 on the status the orchestrator decided (a CRD older than the controller, say): a minimal status that
    says why, never no status at all."""
    await sandbox.admin.aio.fail_requests(
        code=422,
        count=1,
        verb="patch",
        resource="remediationrequests",
        subresource="status",
        namespace=scene.namespace,
        name="refused",
        message="status.blockMessage: Too long: may not be longer than 10",
    )
    await start_orchestrator()
    await scene.request("rr-1", fingerprint_seed="first")
    await scene.phase("rr-1", "Executing")
    await scene.request("refused", fingerprint_seed="second")  # would be Blocked ResourceBusy
    status = await scene.phase("refused", "Failed")
    assert status["failureReason"] == "StatusRefused"
    assert "Too long" in status["message"] and "Blocked" in status["message"]
    assert_concluded(status)
    await eventually(lambda: _has_event(scene, "refused", "Failed"), what="a Failed event")


async def _has_event(scene: Scene, name: str, reason: str) -> bool:
    return reason in await scene.events(name)


# -- 6: conditions of every ending ----------------------------------------------------------------------------
async def test_every_ending_carries_all_three_conditions(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator(consecutive_failure_threshold=1, consecutive_failure_cooldown="1s")
    # Remediated, and a failure during execution (then a skip for manual review on its target).
    await scene.request("ok", fingerprint_seed="ok", target=("Deployment", "a", "default"))
    await scene.complete("ok")
    await scene.request("bad", fingerprint_seed="bad", target=("Deployment", "b", "default"))
    await scene.fail("bad")
    await scene.request("skipped", fingerprint_seed="skipped", target=("Deployment", "b", "default"))
    # A breaker that expires without an execution (it was Blocked=True until then).
    await scene.request("flaky", fingerprint_seed="flaky", target=("Deployment", "c", "default"))
    await scene.fail("flaky", was_execution_failure=False)
    await scene.phase("flaky", "Failed")
    await scene.request("expired", fingerprint_seed="flaky", target=("Deployment", "c", "default"))
    # Invalid input.
    await scene.request("invalid", fingerprint_seed="invalid", timeouts={"executing": "0s"})
    endings = {
        "ok": "Completed",
        "bad": "Failed",
        "skipped": "Failed",
        "flaky": "Failed",
        "expired": "Failed",
        "invalid": "Failed",
    }
    for name, phase in endings.items():
        assert_concluded(await scene.phase(name, phase))
    expired = await scene.status("expired")
    assert expired["failureReason"] == "ConsecutiveFailuresCooldownExpired"
    blocked = next(c for c in expired["conditions"] if c["type"] == "Blocked")
    assert blocked["reason"] == "Unblocked"
