"""A real Prometheus scraped both processes while the demo's scenario played (tests/e2e/conftest.py): it sees both
targets, the blocking metrics and the routing decisions the scenario causes, fires KubernautManualReviewRequired and
KubernautIneffectiveRemediationChain, evaluates every rule without error, and answers every query of the Grafana
dashboard with data.
"""

from __future__ import annotations

from collections import Counter

import pytest

from shared.models import BlockReason
from tests.e2e.conftest import EXECUTOR_JOB, INEFFECTIVE_CHAIN, MANUAL_REVIEW, ORCHESTRATOR_JOB, PrometheusView, Run
from tests.prometheus import dashboard_queries, rule_groups
from tests.tools import require

pytestmark = pytest.mark.slow

QUERIES = dashboard_queries()
RULES = [rule["alert"] for group in rule_groups()["groups"] for rule in group["rules"]]


@pytest.fixture
def prometheus(scenario_run: Run) -> PrometheusView:
    require("prometheus")  # skipped without it, failed in CI
    assert scenario_run.prometheus is not None, "prometheus is on PATH but the run did not start it"
    return scenario_run.prometheus


def test_prometheus_scraped_both_processes_under_the_jobs_the_alerts_name(prometheus):
    assert prometheus.up == {ORCHESTRATOR_JOB: 1.0, EXECUTOR_JOB: 1.0}


def test_prometheus_counts_every_block_the_scenario_causes(prometheus, scenario_run):
    scenario = scenario_run.scenario
    blocks = Counter(step.reason for r in scenario.requests for step in r.expect.path if step.reason)
    assert {reason for (_, reason), count in prometheus.blocked_total.items() if count} == set(BlockReason)
    for reason in BlockReason:
        assert prometheus.blocked_total[(scenario.namespace, reason)] == blocks[reason], reason


def test_prometheus_saw_requests_blocked_and_none_left_blocked_at_the_end(prometheus):
    assert max(prometheus.blocked_peak.values(), default=0) > 0, prometheus.blocked_peak
    assert set(prometheus.blocked_at_end.values()) <= {0.0}, prometheus.blocked_at_end


def test_prometheus_counts_the_skips_for_a_failed_execution(prometheus, scenario_run):
    skipped = [r for r in scenario_run.scenario.requests if r.expect.skip_reason == "PreviousExecutionFailed"]
    assert skipped, "the scenario has requests skipped for a failed execution"
    assert prometheus.skips_for_failed_execution == len(skipped)


def test_both_manual_review_alerts_fire_and_no_other_alert_does(prometheus, scenario_run):
    firing = [alert for alert in prometheus.alerts if alert["state"] == "firing"]
    assert sorted((a["labels"]["alertname"], a["labels"]["severity"]) for a in firing) == [
        (INEFFECTIVE_CHAIN, "critical"),
        (MANUAL_REVIEW, "critical"),
    ]
    (chain,) = [a for a in firing if a["labels"]["alertname"] == INEFFECTIVE_CHAIN]
    assert chain["labels"]["namespace"] == scenario_run.scenario.namespace


@pytest.mark.parametrize("alert", RULES)
def test_every_rule_evaluates_without_error(prometheus, alert):
    (rule,) = [rule for rule in prometheus.rules if rule["name"] == alert]
    assert (rule["health"], rule.get("lastError", "")) == ("ok", "")


@pytest.mark.parametrize("index", range(len(QUERIES)), ids=[f"{title}: {expr}" for title, expr in QUERIES])
def test_every_dashboard_query_evaluates_and_finds_data(prometheus, index):
    title, expr, result = prometheus.dashboard[index]
    assert (title, expr) == QUERIES[index]
    assert not isinstance(result, str), f"{title}: Prometheus refused {expr}: {result}"
    assert result > 0, f"{title}: {expr} found no series with data during the run"
