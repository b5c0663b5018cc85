"""The PrometheusRule through Prometheus' own tool: `promtool check rules` on its groups, and `promtool test rules`
on the unit tests in tests/deploy/promtool/ (one file per alert: input series, eval_time, expected alerts).

Every alert must have cases that fire and cases that stay silent; an alert without them fails here. To add one,
copy a file of tests/deploy/promtool/ and name it after the alert.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.catalogue import ENUM_VALUES, ORCH, ROUTING_SERIES, SERIES, SYNTHETIC, TARGET_LABELS, WFE
from tests.deploy.manifests import MANIFESTS, ROOT, load_documents, of_kind
from tests.tools import require

UNIT_TESTS = ROOT / "tests" / "deploy" / "promtool"
RULE_FILE = "kubernaut-rules.yaml"  # what every unit test file names in rule_files
(RULE,) = of_kind(load_documents(MANIFESTS / "monitoring" / "prometheusrule.yaml"), "PrometheusRule")
ALERTS = {rule["alert"]: rule for group in RULE["spec"]["groups"] for rule in group["rules"]}
TEST_FILES = sorted(UNIT_TESTS.glob("*.yaml"))


def rule_groups() -> str:
    """The PrometheusRule's spec.groups as a Prometheus rule file (what the operator hands Prometheus)."""
    return yaml.safe_dump({"groups": RULE["spec"]["groups"]}, sort_keys=False)


def promtool(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("promtool"), *arguments], cwd=directory, capture_output=True, text=True, timeout=300, check=False
    )


def with_rules(directory: Path, *tests: Path) -> Path:
    (directory / RULE_FILE).write_text(rule_groups())
    for test in tests:
        shutil.copy(test, directory / test.name)
    return directory


def cases(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["tests"])


def test_promtool_checks_the_rule_groups(tmp_path):
    result = promtool(with_rules(tmp_path), "check", "rules", RULE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.stem)
def test_the_promtool_unit_tests_pass(tmp_path, path):
    result = promtool(with_rules(tmp_path, path), "test", "rules", path.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.stem)
def test_the_unit_tests_can_fail_an_alert_that_does_not_fire(tmp_path, path):
    """Expecting silence where the tests expect the alert makes promtool fail: the firing cases are real."""
    document = yaml.safe_load(path.read_text())
    for case in document["tests"]:
        for check in case["alert_rule_test"]:
            check["exp_alerts"] = []
    (tmp_path / path.name).write_text(yaml.safe_dump(document))
    result = promtool(with_rules(tmp_path), "test", "rules", path.name)
    assert result.returncode != 0, result.stdout


def test_every_alert_has_unit_tests_that_fire_and_that_stay_silent():
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == [RULE_FILE], path.name
        for case in document["tests"]:
            for check in case["alert_rule_test"]:
                assert check["alertname"] in ALERTS, f"{path.name}: {check['alertname']} is no alert of the rule"
                (firing if check["exp_alerts"] else silent).add(check["alertname"])
    assert sorted(set(ALERTS) - firing) == [], "alerts without a promtool case that fires"
    assert sorted(set(ALERTS) - silent) == [], "alerts without a promtool case that stays silent"


# -- the unit tests feed what the processes export ---------------------------------------------------------------
_INPUT_SERIES = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_INPUT_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def input_series(case: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(metric, labels) of a case's input series, written in promtool's `name{label="value", ...}` notation."""
    found = []
    for entry in case["input_series"]:
        match = _INPUT_SERIES.match(entry["series"])
        assert match, f"not a series: {entry['series']}"
        name, body = match.group(1), match.group(2) or ""
        labels = dict(_INPUT_LABEL.findall(body))
        assert body.count("=") == len(labels), f"cannot read the labels of {entry['series']}"
        found.append((name, labels))
    return found


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.stem)
def test_every_input_series_is_one_the_processes_export_with_their_labels(path):
    known = {**SERIES, **SYNTHETIC}
    for case in cases(path):
        for metric, labels in input_series(case):
            assert metric in known, f"{path.name}: {metric} is not exported"
            unknown = set(labels) - known[metric] - TARGET_LABELS
            assert not unknown, f"{path.name}: {metric} has no labels {sorted(unknown)}"
            for label, value in labels.items():
                if metric in ROUTING_SERIES and label in ENUM_VALUES:  # "": a decision without a reason (Execute)
                    assert value in ENUM_VALUES[label] | {""}, f"{path.name}: {metric}{{{label}={value!r}}}"


@pytest.mark.parametrize(
    ("alert", "metric", "labels"),
    [
        (
            "KubernautFingerprintBlockedByConsecutiveFailures",
            ORCH + "current_blocked",
            {"reason": "ConsecutiveFailures"},
        ),
        (
            "KubernautManualReviewRequired",
            ORCH + "routing_decisions_total",
            {"decision": "Skip", "reason": "PreviousExecutionFailed"},
        ),
        ("KubernautManualReviewRequired", ORCH + "notification_requests_created_total", {"type": "manual-review"}),
        ("KubernautBlockedExpiryLagHigh", ORCH + "blocked_expiry_lag_seconds_bucket", {}),
        ("KubernautOrchestratorDown", "up", {"job": "kubernaut-orchestrator"}),
        ("KubernautExecutorDown", "up", {"job": "kubernaut-executor"}),
        ("KubernautOrchestratorNotLeading", ORCH + "leader_election_is_leader", {}),
        ("KubernautExecutorNotLeading", WFE + "leader_election_is_leader", {}),
    ],
)
def test_the_alerts_fire_on_what_an_operator_must_hear_about(alert, metric, labels):
    """A case that fires the alert is fed this series (the silent cases show what else it takes)."""
    fed = [
        found
        for path in TEST_FILES
        for case in cases(path)
        if any(check["alertname"] == alert and check["exp_alerts"] for check in case["alert_rule_test"])
        for name, found in input_series(case)
        if name == metric
    ]
    assert any(labels.items() <= found.items() for found in fed), f"no promtool case fires {alert} on {metric}{labels}"
