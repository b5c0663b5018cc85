"""A new leader's WorkflowExecution cache may miss what the previous leader created just before it stopped (the two
watches of a standby lag independently). Deciding on such a cache would mark a running request as "deleted" and
start a second workflow on its target. Found by the chaos suite (SPEC 7 invariant 1).
"""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.reconciler import LABEL_RR, LABEL_TARGET
from sandbox.testing import SandboxHandle
from shared.apiresource import LEASES
from shared.kubetime import format_time
from shared.target import target_label_value
from tests import factories
from tests.integration.helpers import eventually
from tests.integration.orchestrator.conftest import RR, WFE, Scene, StartOrchestrator

TARGET = "default/deployment/web"  # factories' default target


def _lease(holder: str) -> dict:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = {"holderIdentity": holder, "leaseDurationSeconds": 3600, "acquireTime": now, "renewTime": now}
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "kubernaut-orchestrator"},
        "spec": spec,
    }


async def test_a_new_leader_sees_the_execution_its_predecessor_created_before_it_decides(
    scene: Scene, sandbox: SandboxHandle, start_orchestrator: StartOrchestrator
):
    namespace = scene.namespace
    await scene.kube.create(
        LEASES, {**_lease("the-old-leader"), "metadata": {"name": "kubernaut-orchestrator", "namespace": namespace}}
    )
    standby = await start_orchestrator(leader_election=True, lease_namespace=namespace)
    try:
        # The standby's watch of WorkflowExecutions goes down; meanwhile the old leader starts a workflow.
        sandbox.admin.fail_requests(code=500, seconds=60, verb="watch", resource="workflowexecutions")
        sandbox.admin.drop_watches()
        running = await scene.request("running", fingerprint_seed="running")
        wfe = factories.workflow_execution("running", namespace, rr_name="running", target=TARGET)
        wfe["metadata"]["labels"] = {LABEL_RR: "running", LABEL_TARGET: target_label_value(TARGET)}
        wfe["metadata"]["ownerReferences"] = [
            {
                "apiVersion": RR.api_version,
                "kind": RR.kind,
                "name": "running",
                "uid": running["metadata"]["uid"],
                "controller": True,
            }
        ]
        await scene.kube.create(WFE, wfe)
        executing = {
            "phase": "Executing",
            "startTime": format_time(datetime.now(UTC)),
            "workflowExecutionRef": {"kind": "WorkflowExecution", "name": "running", "namespace": namespace},
        }
        await scene.kube.patch_status(RR, namespace, "running", executing)
        await scene.request("next", fingerprint_seed="next")  # same target
        # The old leader gives the lease up; the standby takes over with its execution cache behind.
        lease = await scene.kube.get(LEASES, namespace, "kubernaut-orchestrator")
        await scene.kube.replace(LEASES, {**lease, "spec": {**lease["spec"], "holderIdentity": ""}})
        await eventually(lambda: standby.manager.is_leader, timeout=15, what="the standby to lead")

        blocked = await scene.blocked("next", "ResourceBusy")
        assert blocked["blockingWorkflowExecution"] == "running"
        assert (await scene.status("running"))["phase"] == "Executing"
        assert [e["metadata"]["name"] for e in await scene.executions()] == ["running"]
    finally:
        sandbox.admin.clear_faults()
