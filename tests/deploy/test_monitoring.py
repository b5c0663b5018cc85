"""Scraping finds both processes, the metric catalogue is what they export, and the alerts and the dashboard are
shaped for an operator. What the PromQL means is checked by Prometheus itself: tests/deploy/test_promtool.py (the
rule groups and their unit tests) and tests/e2e/test_prometheus.py (a real server scraping the demo).
"""

import json
import re

import pytest

from tests.deploy.catalogue import FAMILIES, ORCH, WFE, exported_families
from tests.deploy.manifests import MANIFESTS, load_documents, of_kind, selects


def test_the_metric_catalogue_is_what_the_processes_export():
    assert exported_families() == FAMILIES


# -- the PrometheusRule -----------------------------------------------------------------------------------------------
MONITORING = [
    *load_documents(MANIFESTS / "monitoring" / "prometheusrule.yaml"),
    *load_documents(MANIFESTS / "monitoring" / "servicemonitor.yaml"),
]
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


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_waits_is_graded_and_says_what_to_do(alert):
    rule = ALERTS[alert]
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert rule.get("for") or "increase(" in rule["expr"], "a condition alert needs `for`"


@pytest.mark.parametrize("overlay", ["production", "two-container"])
def test_the_up_alerts_name_the_jobs_the_service_monitor_gives(objects):
    for process in ("Orchestrator", "Executor"):
        job = f"kubernaut-{process.lower()}"
        assert job in jobs(objects)
        assert f'up{{job="{job}"}}' in ALERTS[f"Kubernaut{process}Down"]["expr"]


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


def test_the_dashboard_shows_blocking_routing_queues_and_leaders():
    shown = " ".join(expr for _, expr in QUERIES)
    for metric in (
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
    ):
        assert metric in shown, metric


def test_every_metric_a_query_names_is_exported():
    """Each query's metric names (the words that look like ours) are in the catalogue; whether the PromQL is valid
    and finds data is for Prometheus to say (tests/e2e/test_prometheus.py)."""
    names = {*FAMILIES, *(name + suffix for name in FAMILIES for suffix in ("_total", "_bucket", "_sum", "_count"))}
    for title, expr in QUERIES:
        for word in re.findall(r"\b(?:kubernaut_\w+|workqueue_\w+)", expr):
            assert word in names, f"{title}: {word} is not exported"
