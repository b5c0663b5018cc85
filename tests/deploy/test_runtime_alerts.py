"""The runtime alerts of the PrometheusRule (issue 18 item 7: persistent failures must page), checked by Prometheus'
own `promtool`: `check rules` on every group, and `test rules` unit tests that show each alert firing on the series
it is meant for (with its `for:`) and silent otherwise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import MANIFESTS

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")

WE = "kubernaut_workflowexecution_"
RO = "kubernaut_remediationorchestrator_"
EXEC_QUEUE = '{job="kubernaut-executor",name="workflowexecution"}'
ORCH_QUEUE = '{job="kubernaut-orchestrator",name="remediationrequest"}'


def firing(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    """An alertname check: `alert` fires at `at` with exactly these alerts' labels (none: silent)."""
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": dict(label)} for label in labels]}


TESTS: list[tuple[str, list[dict[str, str]], list[dict[str, Any]]]] = [
    (
        "a WorkflowExecution failing to start for good, retried at the longest backoff (1000 s)",
        [
            {
                "series": f'{WE}reconcile_total{{result="error",job="kubernaut-executor"}}',
                "values": "0x15 1x16 2x16 3x16 4x16",
            }
        ],
        [
            firing("KubernautExecutorReconcileErrors", "40m"),  # both windows hold errors since 36m: pending
            firing("KubernautExecutorReconcileErrors", "55m", {"severity": "warning"}),
            firing("KubernautExecutorReconcileErrors", "75m", {"severity": "warning"}),
            firing("KubernautOrchestratorReconcileErrors", "60m"),
        ],
    ),
    (
        "a ten-minute burst of errors",
        [{"series": f'{WE}reconcile_total{{result="error",job="kubernaut-executor"}}', "values": "0+1x10 10x60"}],
        [firing("KubernautExecutorReconcileErrors", at) for at in ("20m", "30m", "40m", "50m")],
    ),
    (
        "one conflict",
        [{"series": f'{WE}reconcile_total{{result="error",job="kubernaut-executor"}}', "values": "0x10 1x60"}],
        [firing("KubernautExecutorReconcileErrors", at) for at in ("20m", "30m", "40m", "50m")],
    ),
    (
        "orchestrator errors every minute; successes do not count",
        [
            {"series": f'{RO}reconcile_total{{result="error"}}', "values": "0+1x60"},
            {"series": f'{WE}reconcile_total{{result="success"}}', "values": "0+10x60"},
        ],
        [
            firing("KubernautOrchestratorReconcileErrors", "30m"),
            firing("KubernautOrchestratorReconcileErrors", "45m", {"severity": "warning"}),
            firing("KubernautExecutorReconcileErrors", "45m"),
        ],
    ),
    (
        "one reconcile that never returns",
        [
            {
                "series": f"workqueue_longest_running_processor_seconds{EXEC_QUEUE}",
                "values": "0+60x40",
            },
            {
                "series": f"workqueue_work_duration_seconds_count{EXEC_QUEUE}",
                "values": "5x40",
            },
        ],
        [
            firing("KubernautWorkQueueStuck", "10m"),  # over 300 s from 6m; pending
            firing(
                "KubernautWorkQueueStuck",
                "20m",
                {"severity": "critical", "job": "kubernaut-executor", "name": "workflowexecution"},
            ),
        ],
    ),
    (
        "keys waiting while none is processed",
        [
            {"series": f"workqueue_depth{ORCH_QUEUE}", "values": "3x40"},
            {
                "series": f"workqueue_work_duration_seconds_count{ORCH_QUEUE}",
                "values": "7x40",
            },
        ],
        [
            firing(
                "KubernautWorkQueueStuck",
                "25m",
                {"severity": "critical", "job": "kubernaut-orchestrator", "name": "remediationrequest"},
            )
        ],
    ),
    (
        "a busy queue that makes progress",
        [
            {"series": f"workqueue_depth{ORCH_QUEUE}", "values": "50x40"},
            {
                "series": f"workqueue_longest_running_processor_seconds{ORCH_QUEUE}",
                "values": "2x40",
            },
            {
                "series": f"workqueue_work_duration_seconds_count{ORCH_QUEUE}",
                "values": "0+100x40",
            },
        ],
        [firing("KubernautWorkQueueStuck", "30m")],
    ),
    (
        "a watch failing every minute",
        [
            {
                "series": f'{WE}informer_watch_restarts_total{{resource="pipelineruns",reason="error"}}',
                "values": "0+1x40",
            }
        ],
        [
            firing("KubernautExecutorWatchFailing", "10m"),
            firing("KubernautExecutorWatchFailing", "30m", {"severity": "warning", "resource": "pipelineruns"}),
        ],
    ),
    (
        "a stalled watch (no bytes for 70 s) of the orchestrator",
        [
            {
                "series": f'{RO}informer_watch_restarts_total{{resource="remediationrequests",reason="inactivity"}}',
                "values": "0+1x40",
            }
        ],
        [
            firing(
                "KubernautOrchestratorWatchFailing", "30m", {"severity": "warning", "resource": "remediationrequests"}
            )
        ],
    ),
    (
        "watches the server closes, as it does every few minutes",
        [
            {
                "series": f'{WE}informer_watch_restarts_total{{resource="pipelineruns",reason="closed"}}',
                "values": "0+1x40",
            },
            {
                "series": f'{WE}informer_watch_restarts_total{{resource="workflowexecutions",reason="error"}}',
                "values": "0x5 1x35",
            },
        ],
        [firing("KubernautExecutorWatchFailing", "30m")],
    ),
]


def groups() -> list[dict[str, Any]]:
    rule = yaml.safe_load((MANIFESTS / "monitoring" / "prometheusrule.yaml").read_text())
    return list(rule["spec"]["groups"])


def promtool(*args: str) -> None:
    result = subprocess.run([PROMTOOL or "promtool", *args], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rule groups without annotations: these tests are about when alerts fire; the wording is checked by
    test_monitoring.py and its templates by `promtool check rules` below."""
    stripped = [
        {**group, "rules": [{k: v for k, v in rule.items() if k != "annotations"} for rule in group["rules"]]}
        for group in groups()
    ]
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": stripped}))
    return path


def test_promtool_accepts_every_rule_group(tmp_path: Path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups()}))
    promtool("check", "rules", str(path))


@pytest.mark.parametrize(("series", "checks"), [t[1:] for t in TESTS], ids=[t[0] for t in TESTS])
def test_the_runtime_alerts_fire_on_their_series_and_only_there(rules: Path, series, checks):
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = rules.parent / "test.yaml"
    path.write_text(yaml.safe_dump(test))
    promtool("test", "rules", str(path))
