"""Scraping finds both processes, and every alert and dashboard query names series and labels the processes export."""

import json

import pytest
from prometheus_client.metrics import MetricWrapperBase

from executor.metrics import ExecutorMetrics
from orchestrator.dryrun import DRY_RUN_DECISION
from orchestrator.metrics import OrchestratorMetrics
from orchestrator.routing import Verdict
from shared.models import BlockReason, NotificationType, SkipReason
from shared.models.workflowexecution import FailureReason
from shared.runtime.metrics import RuntimeMetrics
from tests.deploy.kustomize import build
from tests.deploy.manifests import MANIFESTS, built, of_kind, selects
from tests.deploy.promql import Selector, selectors

ORCH = "kubernaut_remediationorchestrator_"
WFE = "kubernaut_workflowexecution_"

# Every metric family the processes export (SPEC 4.6 and 5; orchestrator/metrics.py, executor/metrics.py,
# shared/runtime/metrics.py): name -> (type, labels). prometheus_client exports a counter `x` as `x_total`.
RUNTIME = {  # shared/runtime/metrics.py, under each process's prefix
    "informer_relists": ("counter", {"resource"}),
    "informer_watch_restarts": ("counter", {"resource", "reason"}),
    "informer_watch_expired": ("counter", {"resource"}),
    "informer_events": ("counter", {"resource", "type"}),
    "leader_election_is_leader": ("gauge", {"lease"}),
    "reconcile": ("counter", {"result"}),
    "reconcile_duration_seconds": ("histogram", set()),
    "kube_events": ("counter", {"outcome"}),
}
WORKQUEUE = {  # client-go's names, no prefix, label `name` (the controller)
    "workqueue_depth": ("gauge", {"name"}),
    "workqueue_adds": ("counter", {"name"}),
    "workqueue_queue_duration_seconds": ("histogram", {"name"}),
    "workqueue_work_duration_seconds": ("histogram", {"name"}),
    "workqueue_retries": ("counter", {"name"}),
    "workqueue_unfinished_work_seconds": ("gauge", {"name"}),
    "workqueue_longest_running_processor_seconds": ("gauge", {"name"}),
}
ORCHESTRATOR = {
    "blocked": ("counter", {"namespace", "reason"}),
    "current_blocked": ("gauge", {"namespace", "reason"}),
    "blocked_cooldown_expired": ("counter", {"namespace", "reason"}),
    "blocked_expiry_lag_seconds": ("histogram", set()),
    "routing_decisions": ("counter", {"namespace", "decision", "reason"}),
    "phase_transitions": ("counter", {"namespace", "from_phase", "to_phase"}),
    "notification_requests_created": ("counter", {"type"}),
}
EXECUTOR = {
    "pipelinerun_creations": ("counter", set()),
    "executions": ("counter", {"outcome"}),
    "execution_duration_seconds": ("histogram", {"outcome"}),
    "failures": ("counter", {"reason", "was_execution_failure"}),
}
FAMILIES = {
    **WORKQUEUE,
    **{ORCH + name: family for name, family in {**RUNTIME, **ORCHESTRATOR}.items()},
    **{WFE + name: family for name, family in {**RUNTIME, **EXECUTOR}.items()},
}
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
SERIES = {
    name + suffix: labels | ({"le"} if suffix == "_bucket" else set())
    for name, (kind, labels) in FAMILIES.items()
    for suffix in SERIES_SUFFIXES[kind]
}
SYNTHETIC = {"up": set()}  # written by Prometheus for every target
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
# Label values we can check: the enums the orchestrator's labels are made of.
ENUM_VALUES = {
    "decision": {v.value for v in Verdict} | {DRY_RUN_DECISION},
    "reason": {v.value for v in (*BlockReason, *SkipReason, *FailureReason)},
    "type": {v.value for v in NotificationType},
}


def exported_families() -> dict[str, tuple[str, set[str]]]:
    """The families both processes' registries really export, with one child per labelled metric to show labels."""
    families = {}
    for prefix, own in (
        (ORCH, lambda registry: OrchestratorMetrics(registry, blocked=lambda: [("ns", "ConsecutiveFailures", 1)])),
        (WFE, ExecutorMetrics),
    ):
        runtime = RuntimeMetrics(prefix)
        for holder in (runtime, own(runtime.registry)):
            for metric in vars(holder).values():
                if isinstance(metric, MetricWrapperBase) and metric._labelnames:  # a child makes labels visible
                    metric.labels(*["x"] * len(metric._labelnames))
        for family in runtime.registry.collect():
            families[family.name] = (family.type, {label for s in family.samples for label in s.labels} - {"le"})
    return families


def test_the_metric_catalogue_is_what_the_processes_export():
    assert exported_families() == FAMILIES


# -- the PrometheusRule -----------------------------------------------------------------------------------------------
MONITORING = build(MANIFESTS / "monitoring")
(RULE,) = of_kind(MONITORING, "PrometheusRule")
(SERVICE_MONITOR,) = of_kind(MONITORING, "ServiceMonitor")
ALERTS = {rule["alert"]: rule for group in RULE["spec"]["groups"] for rule in group["rules"]}


def jobs(objects) -> set[str]:
    """The job names Prometheus gives the targets of our ServiceMonitor (its jobLabel, read from each Service)."""
    return {
        service["metadata"]["labels"][SERVICE_MONITOR["spec"]["jobLabel"]]
        for service in of_kind(objects, "Service")
        if selects(SERVICE_MONITOR["spec"]["selector"], service["metadata"].get("labels") or {})
    }


def check_selectors(expr: str, job_names: set[str]) -> list[Selector]:
    found = selectors(expr)
    assert found, expr
    for selector in found:
        known = {**SERIES, **SYNTHETIC}
        assert selector.metric in known, f"{selector.metric} is not exported (in {expr})"
        for matcher in selector.matchers:
            assert matcher.label in known[selector.metric] | TARGET_LABELS, f"{selector.metric}{{{matcher.label}}}"
            if matcher.operator != "=":
                continue
            if matcher.label == "job":
                assert matcher.value in job_names, f"no target has job={matcher.value}"
            elif matcher.label in ENUM_VALUES and selector.metric.startswith(ORCH):
                assert matcher.value in ENUM_VALUES[matcher.label], f"{matcher} is never exported"
    return found


@pytest.mark.parametrize("alert", sorted(ALERTS))
@pytest.mark.parametrize("overlay", ["production", "two-container"])
def test_every_alert_names_exported_series_labels_and_jobs(alert, objects):
    check_selectors(ALERTS[alert]["expr"], jobs(objects))


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_waits_is_graded_and_says_what_to_do(alert):
    rule = ALERTS[alert]
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert rule.get("for") or "increase(" in rule["expr"], "a condition alert needs `for`"


def series_of(alert: str) -> list[tuple[str, dict[str, str]]]:
    return [(s.metric, {m.label: m.value for m in s.matchers}) for s in selectors(ALERTS[alert]["expr"])]


@pytest.mark.parametrize(
    ("alert", "metric", "matchers"),
    [
        ("KubernautFingerprintBlockedByConsecutiveFailures", "current_blocked", {"reason": "ConsecutiveFailures"}),
        (
            "KubernautManualReviewRequired",
            "routing_decisions_total",
            {"decision": "Skip", "reason": "PreviousExecutionFailed"},
        ),
        (
            "KubernautIneffectiveRemediationChain",
            "routing_decisions_total",
            {"decision": "Skip", "reason": "IneffectiveChain"},
        ),
        ("KubernautBlockedExpiryLagHigh", "blocked_expiry_lag_seconds_bucket", {}),
        ("KubernautOrchestratorDown", "up", {"job": "kubernaut-orchestrator"}),
        ("KubernautExecutorDown", "up", {"job": "kubernaut-executor"}),
        ("KubernautOrchestratorNotLeading", "leader_election_is_leader", {}),
        ("KubernautExecutorNotLeading", "leader_election_is_leader", {}),
    ],
)
def test_the_alerts_watch_what_an_operator_must_hear_about(alert, metric, matchers):
    prefix = "" if metric == "up" else WFE if alert.startswith("KubernautExecutor") else ORCH
    assert (prefix + metric, matchers) in series_of(alert)


# -- scraping ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", ["production", "two-container"])
def test_the_service_monitor_scrapes_every_metrics_service_as_its_process(objects):
    (monitor,) = of_kind(objects, "ServiceMonitor")
    spec = monitor["spec"]
    metrics_services = [
        s for s in of_kind(objects, "Service") if any(p["name"] == "metrics" for p in s["spec"]["ports"])
    ]
    selected = [s for s in of_kind(objects, "Service") if selects(spec["selector"], s["metadata"].get("labels") or {})]
    assert selected == metrics_services
    assert all(s["metadata"]["namespace"] in spec["namespaceSelector"]["matchNames"] for s in selected)
    assert [(e["port"], e["path"], e["honorLabels"]) for e in spec["endpoints"]] == [("metrics", "/metrics", True)]
    assert jobs(objects) == {"kubernaut-orchestrator", "kubernaut-executor"}


@pytest.mark.parametrize("overlay", ["kind"])
def test_kind_needs_no_prometheus_operator(objects):
    assert not [obj for obj in objects if obj["apiVersion"].startswith("monitoring.coreos.com/")]


# -- the Grafana dashboard --------------------------------------------------------------------------------------------
DASHBOARD_FILE = MANIFESTS / "common" / "dashboards" / "kubernaut.json"
DASHBOARD = json.loads(DASHBOARD_FILE.read_text())
QUERIES = [(panel["title"], target["expr"]) for panel in DASHBOARD["panels"] for target in panel["targets"]]


def test_the_dashboard_ships_in_a_config_map_grafana_picks_up(objects):
    (config_map,) = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"] == "kubernaut-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["kubernaut.json"]) == DASHBOARD


def test_the_dashboard_has_unique_panels_on_a_chosen_prometheus():
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    assert len({p["id"] for p in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])
    assert {v["name"]: v["type"] for v in DASHBOARD["templating"]["list"]} == {"datasource": "datasource"}
    assert all(p["datasource"]["uid"] == "${datasource}" for p in DASHBOARD["panels"])


@pytest.mark.parametrize(("title", "expr"), QUERIES, ids=[title for title, _ in QUERIES])
def test_every_dashboard_query_names_exported_series_and_labels(title, expr):
    check_selectors(expr, jobs(built("production")))


def test_the_dashboard_shows_blocking_routing_queues_and_leaders():
    shown = {s.metric for _, expr in QUERIES for s in selectors(expr)}
    assert {
        ORCH + "current_blocked",
        ORCH + "blocked_total",
        ORCH + "blocked_cooldown_expired_total",
        ORCH + "blocked_expiry_lag_seconds_bucket",
        ORCH + "routing_decisions_total",
        ORCH + "phase_transitions_total",
        ORCH + "notification_requests_created_total",
        "workqueue_depth",
        ORCH + "leader_election_is_leader",
        WFE + "leader_election_is_leader",
    } <= shown


# -- the PromQL reader ------------------------------------------------------------------------------------------------
def test_the_promql_reader_finds_selectors_and_skips_functions_label_lists_and_ranges():
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="1", y=~"b|c"}[5m]))) > on(job) group_left b offset 1h'
    assert selectors(expr) == [
        Selector("a_bucket", (("x", "=", "1"), ("y", "=~", "b|c"))),
        Selector("b", ()),
    ]
