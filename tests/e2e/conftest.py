"""One run of the demo's scenario for the whole package: the same system and driver as `make demo`.

The orchestrator, the executor and the Tekton simulator run as child processes, each as the ServiceAccount user the
manifests give it, with leader election on (as deployed), against a sandbox to which our CRDs are applied through
the API. Three routine API failures are injected, each once, so the calls a controller makes to recover from them
are recorded for the RBAC comparison (tests/e2e/test_rbac.py): a 409 Conflict on a request's status write (the
orchestrator re-reads the request), an AlreadyExists answer to a WorkflowExecution create that did land (the
orchestrator reads it), and a 409 on a WorkflowExecution status write (the executor re-reads it, then adopts its
PipelineRun). Neither changes what the scenario expects, which the tests check too.

A real Prometheus (tests/prometheus.py; Debian's `prometheus` package) scrapes both processes while the scenario
plays, with the PrometheusRule's groups loaded; what it shows is kept in `Run.prometheus` for
tests/e2e/test_prometheus.py. Without a `prometheus` binary that part is left out (None), and those tests skip,
or fail in CI.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Callable
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
from tests.prometheus import Prometheus, PrometheusError, dashboard_queries

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


ORCHESTRATOR_JOB, EXECUTOR_JOB = "kubernaut-orchestrator", "kubernaut-executor"  # the ServiceMonitor's job names
MANUAL_REVIEW = "KubernautManualReviewRequired"
INEFFECTIVE_CHAIN = "KubernautIneffectiveRemediationChain"


@dataclass
class PrometheusView:
    """What the Prometheus that scraped the run shows, read through its HTTP API once the scenario settled."""

    up: dict[str, float]  # job -> up
    blocked_total: dict[tuple[str, ...], float]  # (namespace, reason) -> count, once it matches the processes'
    skips_for_failed_execution: float  # routing_decisions_total{decision="Skip",reason="PreviousExecutionFailed"}
    blocked_peak: dict[str, float]  # reason -> the most requests current_blocked showed at once during the run
    blocked_at_end: dict[str, float]  # reason -> current_blocked at the end
    alerts: list[dict[str, Any]]  # /api/v1/alerts, once both manual-review alerts fired
    rules: list[dict[str, Any]]  # /api/v1/rules: each rule's health and last error
    dashboard: list[tuple[str, str, int | str]]  # (title, expr, series with a sample during the run | the error)


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
    prometheus: PrometheusView | None = None  # None: no prometheus binary on this machine


async def _run(directory: Path) -> Run:
    scenario = load_scenario()
    output: list[str] = []
    binary = shutil.which("prometheus")
    prometheus: Prometheus | None = None
    view: PrometheusView | None = None
    try:
        async with system(directory, scenario, output.append) as running:
            admin = running.sandbox.admin
            for fault in FAULTS:
                options = {key: value for key, value in fault.items() if key != "process"}
                admin.fail_requests(count=1, user=USERS[fault["process"]], **options)
            if binary is not None:
                ports = (running.orchestrator.metrics_port, running.executor.metrics_port)
                assert None not in ports, "the stack gives every controller a metrics port"
                jobs = {ORCHESTRATOR_JOB: [ports[0] or 0], EXECUTOR_JOB: [ports[1] or 0]}
                prometheus = Prometheus(binary, directory / "prometheus", jobs)
                await asyncio.to_thread(prometheus.start)
                await asyncio.to_thread(prometheus.wait_for, "both targets scraped", prometheus_up(prometheus))
            started = time.time()
            observed = await play(running.kube, scenario)
            requests = {r.name: await running.kube.get(RR, scenario.namespace, r.name) for r in scenario.requests}
            notices = await notifications(running.kube, scenario.namespace)
            samples, _ = await settled(running.samples, lambda s: check_metrics(scenario, s))
            if prometheus is not None:
                view = await asyncio.to_thread(_observe, prometheus, samples, started)
            await _never_started(running.kube, scenario.namespace)
            faults = admin.faults()
            fired = [int(f.get("fired", 0)) for f in [*faults["armed"], *faults["spent"]]]
            exit_codes = running.stack.stop()
            audit = {process: admin.audit(user=USERS[process]) for process in ("orchestrator", "executor")}
    finally:
        if prometheus is not None:
            prometheus.stop()
    return Run(scenario, observed, requests, notices, samples, exit_codes, audit, fired, output, view)


def prometheus_up(prometheus: Prometheus) -> Callable[[], bool]:
    return lambda: prometheus.values("up", "job") == {(ORCHESTRATOR_JOB,): 1.0, (EXECUTOR_JOB,): 1.0}


def _observe(prometheus: Prometheus, samples: Samples, started: float) -> PrometheusView:
    """Wait until Prometheus has scraped the settled counters and evaluated the alert, then read what it shows."""
    orchestrator = "kubernaut_remediationorchestrator_"
    settled_families = (orchestrator + "blocked_total", orchestrator + "current_blocked")

    def as_prometheus_shows(name: str) -> dict[tuple[str, ...], float]:
        return {
            (dict(labels)["namespace"], dict(labels)["reason"]): value
            for (sample, labels), value in samples.items()
            if sample == name
        }

    def scraped_settled() -> bool:
        """Prometheus' last scrape shows the counts the processes settled on (a scrape lags up to a second)."""
        return all(
            prometheus.values(name, "namespace", "reason") == as_prometheus_shows(name) for name in settled_families
        )

    def firing() -> list[dict[str, Any]] | None:
        found = prometheus.alerts()
        fired = {a["labels"]["alertname"] for a in found if a["state"] == "firing"}
        return found if {MANUAL_REVIEW, INEFFECTIVE_CHAIN} <= fired else None

    def evaluated() -> list[dict[str, Any]] | None:
        found = prometheus.rules()
        return found if found and all(rule["health"] != "unknown" for rule in found) else None

    prometheus.wait_for("Prometheus to scrape the settled blocking metrics", scraped_settled)
    blocked = prometheus.values(orchestrator + "blocked_total", "namespace", "reason")
    skip = 'kubernaut_remediationorchestrator_routing_decisions_total{decision="Skip",reason="PreviousExecutionFailed"}'
    skips = prometheus.values(f"sum({skip})").get((), 0.0)
    alerts = prometheus.wait_for(f"{MANUAL_REVIEW} and {INEFFECTIVE_CHAIN} to fire", firing)
    rules = prometheus.wait_for("every rule to be evaluated", evaluated)
    now = time.time()
    gauge = "sum by (reason) (kubernaut_remediationorchestrator_current_blocked)"
    peak = {
        series["metric"].get("reason", ""): max(float(value) for _, value in series["values"])
        for series in prometheus.query_range(gauge, started, now)
    }
    at_end = {key[0]: value for key, value in prometheus.values(gauge, "reason").items()}
    dashboard: list[tuple[str, str, int | str]] = []
    for title, expr in dashboard_queries():
        try:
            result = prometheus.query_range(expr, started, now)
        except PrometheusError as error:
            dashboard.append((title, expr, str(error)))
            continue
        with_data = [s for s in result if any(not math.isnan(float(value)) for _, value in s["values"])]
        dashboard.append((title, expr, len(with_data)))
    up = {key[0]: value for key, value in prometheus.values("up", "job").items()}
    return PrometheusView(up, blocked, skips, peak, at_end, alerts, rules, dashboard)


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
