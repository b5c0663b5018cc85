"""A pure executor (SPEC 2, 5): no failure counter, cooldown or backoff field in a WorkflowExecution's status - not
in the model, not in the CRD the cluster validates against, not in any status the executor writes.

(The `scene` fixture also checks every status watched during every test of this package.)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.models import WorkflowExecution, WorkflowExecutionStatus
from shared.models.crd import structural_schema
from tests.integration.executor.conftest import Scene, routing_state_keys
from tests.integration.inloop import InLoopController

CRD = Path(__file__).resolve().parents[3] / "manifests" / "crds" / "workflowexecutions.kubernaut.ai.yaml"


def test_the_check_finds_routing_state_wherever_it_is():
    status = {
        "consecutiveFailures": 2,
        "failureDetails": {"nextAllowedExecution": "2026-01-01T00:00:00Z", "retryCount": 1},
        "conditions": [{"type": "Cooldown"}, {"backoffSeconds": 60}],
    }
    assert sorted(routing_state_keys(status)) == [
        "status.conditions[1].backoffSeconds",
        "status.consecutiveFailures",
        "status.failureDetails.nextAllowedExecution",
        "status.failureDetails.retryCount",
    ]


def test_the_model_has_no_routing_state():
    schema = WorkflowExecutionStatus.model_json_schema(by_alias=True)
    assert "failureDetails" in schema["properties"]
    assert list(routing_state_keys(schema)) == []


def test_the_crd_schema_has_no_routing_state():
    (crd,) = [doc for doc in yaml.safe_load_all(CRD.read_text()) if doc]
    schemas = [version["schema"]["openAPIV3Schema"] for version in crd["spec"]["versions"]]
    for schema in [structural_schema(WorkflowExecution), *schemas]:  # as generated, and as committed
        status = schema["properties"]["status"]
        assert "wasExecutionFailure" in status["properties"]["failureDetails"]["properties"]
        assert list(routing_state_keys(status)) == []


async def test_no_status_written_has_routing_state(scene: Scene, executor: InLoopController):
    target = scene.target("web")
    await scene.execution("ok", target=target)
    await scene.phase("ok", "Completed")
    await scene.execution("failed", target=target, sim={"outcome": "Failed"})
    await scene.phase("failed", "Failed")
    await scene.execution("busy", target=scene.target("api"), sim={"duration": "60"})
    await scene.started("busy")
    await scene.execution("refused", target=scene.target("api"))
    await scene.phase("refused", "Failed")
    for name in ("ok", "failed", "busy", "refused"):
        await scene.phases(name)  # the watch has caught up
    watched = {(name, status.get("phase")) for name, status in scene.statuses}
    assert {("ok", "Completed"), ("failed", "Failed"), ("busy", "Running"), ("refused", "Failed")} <= watched
    assert [key for _, status in scene.statuses for key in routing_state_keys(status)] == []
    for name in ("ok", "failed", "busy", "refused"):
        assert list(routing_state_keys(await scene.status(name))) == []
