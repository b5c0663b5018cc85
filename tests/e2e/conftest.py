"""One run of the demo's scenario for the whole package: the same system and driver as `make demo`.

The orchestrator, the executor and the Tekton simulator run as child processes, each as the ServiceAccount user the
manifests give it, with leader election on (as deployed), against a sandbox to which our CRDs are applied through
the API. Three routine API failures are injected, each once, so the calls a controller makes to recover from them
are recorded for the RBAC comparison (tests/e2e/test_rbac.py): a 409 Conflict on a request's status write (the
orchestrator re-reads the request), an AlreadyExists answer to a WorkflowExecution create that did land (the
orchestrator reads it), and a 409 on a WorkflowExecution status write (the executor re-reads it, then adopts its
PipelineRun). Neither changes what the scenario expects, which the tests check too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.audit import AuditRecord
from sandbox.demo import system
from sandbox.scenario import (
    RR,
    Observed,
    Samples,
    Scenario,
    check_metrics,
    load_scenario,
    notifications,
    play,
    settled,
)
from sandbox.stack import USERS
from shared.models import WorkflowExecution
from shared.runtime.client import KubeClient
from shared.runtime.store import KubeDict
from tests import factories
from tests.integration.helpers import eventually

FAULTS: list[dict[str, Any]] = [
    {
        "code": 409,
        "verb": "patch",
        "resource": "remediationrequests",
        "subresource": "status",
        "process": "orchestrator",
    },
    {"code": 409, "when": "after", "verb": "create", "resource": "workflowexecutions", "process": "orchestrator"},
    {"code": 409, "verb": "patch", "resource": "workflowexecutions", "subresource": "status", "process": "executor"},
]


@dataclass
class Run:
    scenario: Scenario
    observed: Observed
    requests: dict[str, KubeDict]  # each request as the API server returns it after the run
    notifications: list[KubeDict]
    samples: Samples  # both controllers' /metrics
    exit_codes: dict[str, int]
    audit: dict[str, list[AuditRecord]]  # process -> its requests, start-up to shutdown
    faults_fired: list[int]
    output: list[str] = field(default_factory=list)


async def _run(directory: Path) -> Run:
    scenario = load_scenario()
    output: list[str] = []
    async with system(directory, scenario, output.append) as running:
        admin = running.sandbox.admin
        for fault in FAULTS:
            options = {key: value for key, value in fault.items() if key != "process"}
            admin.fail_requests(count=1, user=USERS[fault["process"]], **options)
        observed = await play(running.kube, scenario)
        requests = {r.name: await running.kube.get(RR, scenario.namespace, r.name) for r in scenario.requests}
        notices = await notifications(running.kube, scenario.namespace)
        samples, _ = await settled(running.samples, lambda s: check_metrics(scenario, s))
        await _never_started(running.kube, scenario.namespace)
        faults = admin.faults()
        fired = [int(f.get("fired", 0)) for f in [*faults["armed"], *faults["spent"]]]
        exit_codes = running.stack.stop()
        audit = {process: admin.audit(user=USERS[process]) for process in ("orchestrator", "executor")}
    return Run(scenario, observed, requests, notices, samples, exit_codes, audit, fired, output)


NEVER_STARTS = "never-starts"


async def _never_started(kube: KubeClient, namespace: str) -> None:
    """After the scenario (its metrics checked): a request whose run Tekton never starts. The request times out
    after 1 s and the executor cancels the run at its own deadline (issue 18 item 3), so the RBAC comparison sees
    that call made too. It waits out the executor's default grace (10 s) of Tekton's own timeout."""
    body = factories.remediation_request(
        NEVER_STARTS,
        namespace,
        signal="NeverStarts",
        target=("Deployment", NEVER_STARTS, namespace),
        workflow_id="restart-deployment",
        bundle="registry.example.com/kubernaut/workflows/restart-deployment:1.0.0",
        parameters={"SIM_OUTCOME": "Ignore"},
        timeouts={"executing": "1s"},
    )
    await kube.create(RR, body)

    async def ended() -> bool:
        for wfe in (await kube.list(WorkflowExecution.RESOURCE, namespace))["items"]:
            if (wfe["spec"]["remediationRequestRef"] or {}).get("name") == NEVER_STARTS:
                details = (wfe.get("status") or {}).get("failureDetails") or {}
                return details.get("reason") == "DeadlineExceeded" and details.get("wasExecutionFailure") is False
        return False

    await eventually(ended, timeout=60, what="the executor to end the never-started run at its deadline")


@pytest.fixture(scope="package")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The scenario played once; the processes stopped (SIGTERM) before the audit log is read."""
    return asyncio.run(_run(tmp_path_factory.mktemp("e2e")))
