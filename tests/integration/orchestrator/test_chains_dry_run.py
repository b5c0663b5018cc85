"""Ineffective remediation chains (SPEC 4.9) and dry run (SPEC 4.8) over real HTTP and watches.

The orchestrator runs in the test's loop; the test plays the executor (WorkflowExecution status patches).
"""

from __future__ import annotations

import asyncio

import pytest

from sandbox.testing import SandboxHandle
from shared.runtime.store import KubeDict
from tests import factories
from tests.integration.helpers import eventually
from tests.integration.orchestrator.conftest import Scene, StartOrchestrator

CHAIN_ACK = "kubernaut.ai/ineffective-chain-acknowledged"
DRY_RUN = "kubernaut.ai/dry-run"


async def _remediate(scene: Scene, name: str) -> dict:
    """Route `name` to execution (waiting out a short RecentlyRemediated block), run it, complete it."""
    await scene.request(name)
    status = await scene.phase(name, "Executing")
    await scene.run(name)
    await scene.complete(name)
    await scene.phase(name, "Completed")
    return status


async def test_a_restart_loop_goes_to_manual_review_once_and_resumes_when_acknowledged(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    orchestrator = await start_orchestrator(
        ineffective_chain_threshold=2, ineffective_window="10m", recently_remediated_cooldown="1s"
    )
    await _remediate(scene, "rr-1")
    await _remediate(scene, "rr-2")  # the alert came back within the window: rr-1 was ineffective
    assert (await scene.status("rr-2"))["ineffectiveCount"] == 1
    assert "ineffectiveCount" not in await scene.status("rr-1")

    await scene.request("rr-3")
    skipped = await scene.phase("rr-3", "Failed")
    assert skipped["skipReason"] == "IneffectiveChain" and skipped["reason"] == "IneffectiveChain"
    assert (skipped["outcome"], skipped["requiresManualReview"], skipped["ineffectiveCount"]) == (
        "ManualReviewRequired",
        True,
        2,
    )
    assert CHAIN_ACK in skipped["message"]
    await scene.request("rr-4")  # the chain stays tripped: same notice
    assert (await scene.phase("rr-4", "Failed"))["skipReason"] == "IneffectiveChain"
    (notice,) = await scene.notifications()
    assert (notice["spec"]["type"], notice["spec"]["priority"]) == ("manual-review", "critical")
    for name in ("rr-3", "rr-4"):
        refs = (await scene.status(name))["notificationRequestRefs"]
        assert [r["name"] for r in refs] == [notice["metadata"]["name"]], "one notice per chain"
    assert sorted(w["metadata"]["labels"]["kubernaut.ai/remediation-request"] for w in await scene.executions()) == [
        "rr-1",
        "rr-2",
    ]
    await eventually(lambda: _has_event(scene, "rr-3", "ManualReviewRequired"), what="ManualReviewRequired event")
    assert (
        orchestrator.metric(
            "routing_decisions_total", namespace=scene.namespace, decision="Skip", reason="IneffectiveChain"
        )
        == 2
    )

    # One watch stream delivers both in order: when rr-5 is in the orchestrator's cache, so is this annotation.
    await scene.annotate(scene.RESOURCE, "rr-4", CHAIN_ACK, "alice: the leak is fixed in v2")
    status = await _remediate(scene, "rr-5")
    assert "ineffectiveCount" not in status, "the acknowledged chain no longer counts"
    await scene.request("rr-6")  # back within the window of rr-5: a new chain starts at 1
    assert (await scene.phase("rr-6", "Executing"))["ineffectiveCount"] == 1


async def test_a_chain_is_never_counted_across_targets(scene: Scene, start_orchestrator: StartOrchestrator):
    await start_orchestrator(ineffective_chain_threshold=1, recently_remediated_cooldown="1s")
    await _remediate(scene, "rr-web")
    # The same fingerprint on another target: its own chain, which has no completion yet.
    await scene.request("rr-api", target=("Deployment", "api", "default"), fingerprint_seed="HighMemory/Deployment/web")
    status = await scene.phase("rr-api", "Executing")
    assert "ineffectiveCount" not in status


async def test_a_dry_run_routes_as_production_creates_nothing_and_blocks_like_a_completion(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox
):
    orchestrator = await start_orchestrator(recently_remediated_cooldown="1h")
    await scene.kube.create(
        scene.RESOURCE,
        _with_annotation(scene, "rr-dry", DRY_RUN, "true", parameters={"replicas": "3"}, fingerprint_seed="dry"),
    )
    status = await scene.phase("rr-dry", "Completed")
    assert status["outcome"] == "DryRun"
    for part in ("restart-pods", "registry.example.com/workflows/restart-pods:v1", '"replicas":"3"'):
        assert part in status["message"], part
    assert "on default/deployment/web" in status["message"]
    assert not status.get("workflowExecutionRef")
    assert await scene.executions() == []
    creates = [
        r
        for r in sandbox.admin.audit()
        if (r.resource, r.verb, r.namespace) == ("workflowexecutions", "create", scene.namespace)
    ]
    assert creates == [], "a dry run never even tries to create a WorkflowExecution"
    await eventually(lambda: _has_event(scene, "rr-dry", "DryRun"), what="DryRun event")
    assert orchestrator.metric("routing_decisions_total", namespace=scene.namespace, decision="DryRun", reason="") == 1

    # A real request of another signal for the same workflow and target: blocked as after a real completion.
    await scene.request("rr-real", fingerprint_seed="real")
    blocked = await scene.blocked("rr-real", "RecentlyRemediated")
    assert "dry run" in blocked["blockMessage"] and "rr-dry" in blocked["blockMessage"]
    assert not blocked.get("blockingWorkflowExecution")
    assert blocked["blockedUntil"] > status["completionTime"]


async def test_dry_run_settings_apply_and_an_annotation_cannot_turn_them_off(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    await start_orchestrator(dry_run_namespaces=[scene.namespace])
    await scene.kube.create(scene.RESOURCE, _with_annotation(scene, "rr-1", DRY_RUN, "false"))
    status = await scene.phase("rr-1", "Completed")
    assert status["outcome"] == "DryRun"
    assert await scene.executions() == []


async def test_a_dry_run_is_routed_through_every_check_first(scene: Scene, start_orchestrator: StartOrchestrator):
    """A dry run takes the same blocks as production: here a real run is busy on the target."""
    await start_orchestrator()
    await scene.request("rr-real", fingerprint_seed="real")
    await scene.phase("rr-real", "Executing")
    await scene.kube.create(scene.RESOURCE, _with_annotation(scene, "rr-dry", DRY_RUN, "true", fingerprint_seed="d"))
    await scene.blocked("rr-dry", "ResourceBusy")
    await scene.run("rr-real")
    await scene.complete("rr-real")
    await scene.blocked("rr-dry", "RecentlyRemediated")


def _with_annotation(scene: Scene, name: str, key: str, value: str, **options) -> KubeDict:
    obj = factories.remediation_request(name, scene.namespace, **options)
    obj["metadata"]["annotations"] = {key: value}
    return obj


async def _has_event(scene: Scene, name: str, reason: str) -> bool:
    return reason in set(await scene.events(name))


async def test_dry_runs_routed_at_once_on_one_target_block_each_other_as_production_would(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    """Production would run one and block the rest (busy, then recently remediated): so do dry runs, although
    no WorkflowExecution exists to be seen - the decided dry run counts before its status write is in the cache."""
    await start_orchestrator(dry_run=True, recently_remediated_cooldown="1h", workers=8)
    names = [f"rr-{n}" for n in range(6)]
    await asyncio.gather(*(scene.request(name, fingerprint_seed=name) for name in names))
    statuses = [await scene.until(n, lambda s: s.get("phase") in ("Completed", "Blocked"), "routed") for n in names]
    outcomes = sorted((s["phase"], s.get("outcome") or s.get("blockReason")) for s in statuses)
    assert outcomes == [("Blocked", "RecentlyRemediated")] * 5 + [("Completed", "DryRun")]


async def test_a_chain_is_counted_alike_by_a_fresh_orchestrator_after_a_restart(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    """The count lives on the requests' status, so a new process (its cache filled by one list) goes on with it."""
    settings = {"ineffective_chain_threshold": 2, "recently_remediated_cooldown": "1s"}
    first = await start_orchestrator(**settings)
    await _remediate(scene, "rr-1")
    await _remediate(scene, "rr-2")
    await first.shutdown()
    await start_orchestrator(**settings)
    await scene.request("rr-3")
    skipped = await scene.phase("rr-3", "Failed")
    assert (skipped["skipReason"], skipped["ineffectiveCount"]) == ("IneffectiveChain", 2)


async def test_dry_runs_form_an_ineffective_chain_as_real_runs_would(
    scene: Scene, start_orchestrator: StartOrchestrator
):
    await start_orchestrator(dry_run=True, ineffective_chain_threshold=2, recently_remediated_cooldown="3s")
    await scene.request("rr-1")
    assert (await scene.phase("rr-1", "Completed"))["outcome"] == "DryRun"
    await scene.request("rr-2")
    await scene.blocked("rr-2", "RecentlyRemediated")  # after a dry run of the workflow, as after a real one
    completed = await scene.phase("rr-2", "Completed")
    assert (completed["outcome"], completed["ineffectiveCount"]) == ("DryRun", 1)
    await scene.request("rr-3")
    skipped = await scene.phase("rr-3", "Failed")
    assert (skipped["skipReason"], skipped["ineffectiveCount"]) == ("IneffectiveChain", 2)
    assert len(await scene.notifications()) == 1, "the manual-review notice is sent in dry run too"
    assert await scene.executions() == []


@pytest.mark.sandbox_only
async def test_the_count_survives_a_status_write_lost_after_the_create(
    scene: Scene, start_orchestrator: StartOrchestrator, sandbox: SandboxHandle
):
    """Regression (the chaos suite's recount): the WorkflowExecution is created, the status write that follows fails;
    the retry finds the execution its own and wrote Executing without the count the routing had given."""
    await start_orchestrator(ineffective_chain_threshold=5, recently_remediated_cooldown="1ms")
    await _remediate(scene, "rr-1")
    # rr-2's first status write (Executing, after its WorkflowExecution was created) fails once.
    await sandbox.admin.aio.fail_requests(
        code=500,
        count=1,
        verb="patch",
        resource="remediationrequests",
        subresource="status",
        namespace=scene.namespace,
        name="rr-2",
    )
    await scene.request("rr-2")
    status = await scene.phase("rr-2", "Executing")
    assert status["ineffectiveCount"] == 1
