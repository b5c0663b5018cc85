"""The scenario model, its checks and the demo's table, without processes (tests/e2e plays the scenario)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.metrics import PREFIX
from sandbox.demo import Table, human_age, printer_columns
from sandbox.scenario import (
    SCENARIO,
    Observed,
    Scenario,
    ScenarioError,
    Step,
    check_metrics,
    check_requests,
    expected_metrics,
    load_scenario,
)
from shared.models import BlockReason, Outcome, RemediationPhase, SkipReason

EXAMPLE_RR = Path(__file__).resolve().parents[3] / "examples" / "remediationrequest.yaml"


REQUEST = {
    "name": "web",
    "signal": "HighMemoryUsage",
    "target": "Deployment/web",
    "workflow": "restart-deployment",
    "expect": {"path": ["Blocked ResourceBusy", "Executing", "Completed"], "outcome": "Remediated"},
}


def scenario() -> Scenario:
    return Scenario.model_validate({"requests": [REQUEST]})


def written(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_demo_scenario_loads_and_uses_every_block_reason():
    loaded = load_scenario(SCENARIO)
    assert {step.reason for r in loaded.requests for step in r.expect.path if step.reason} == set(BlockReason)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expect": {"path": ["Blocked", "Completed"]}}, "requests.0.expect.path: Value error, 'Blocked': a Blocked"),
        ({"expect": {"path": ["Executing"]}}, "requests.0.expect.path: Value error, the path must end in a terminal"),
        ({"colour": "red"}, "requests.0.colour: Extra inputs are not permitted"),
        ({"target": "web"}, "requests.0.target: Value error, 'web' is not Kind/name"),
        ({"after": {"request": "web", "phase": "Completed"}}, "'web' is not an earlier request"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_field(tmp_path, change, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario(written(tmp_path, {"requests": [{**REQUEST, **change}]}))
    assert str(error.value).startswith(f"{tmp_path / 'scenario.yaml'}: ")
    assert message in str(error.value)


def test_a_request_has_the_fingerprint_convention_of_the_example():
    (example,) = yaml.safe_load_all(EXAMPLE_RR.read_text())
    body = scenario().requests[0].body("default")
    assert body["spec"]["signalFingerprint"] == example["spec"]["signalFingerprint"]


def observed(path: list[str], **status: Any) -> Observed:
    steps = [Step.parse(text) for text in path]
    obj = {"metadata": {"name": "web"}, "status": {"phase": str(steps[-1].phase), **status}}
    return Observed(paths={"web": steps}, objects={"web": obj})


def test_a_request_that_went_as_expected_has_no_problem():
    run = observed(["Blocked ResourceBusy", "Executing", "Completed"], outcome="Remediated")
    assert check_requests(scenario(), run, []) == []


@pytest.mark.parametrize(
    ("path", "status", "problem"),
    [
        (["Executing", "Completed"], {"outcome": "Remediated"}, "web: path [Executing, Completed], expected"),
        (["Blocked ResourceBusy", "Executing", "Failed"], {}, "web: outcome None, expected 'Remediated'"),
        (["Blocked ResourceBusy", "Executing"], {"outcome": "Remediated"}, "web: still Executing"),
    ],
)
def test_a_request_that_went_otherwise_is_named_with_what_differs(path, status, problem):
    problems = check_requests(scenario(), observed(path, **status), [])
    assert any(p.startswith(problem) for p in problems), problems


def test_an_unexpected_or_missing_ineffective_count_is_named():
    run = observed(["Blocked ResourceBusy", "Executing", "Completed"], outcome="Remediated", ineffectiveCount=1)
    assert check_requests(scenario(), run, []) == ["web: ineffectiveCount 1, expected None"]
    counted = Scenario.model_validate(
        {"requests": [{**REQUEST, "expect": {**REQUEST["expect"], "ineffectiveCount": 1}}]}
    )
    assert check_requests(counted, run, []) == []


def test_annotations_reach_the_request_and_are_left_out_when_none():
    dry = Scenario.model_validate({"requests": [{**REQUEST, "annotations": {"kubernaut.ai/dry-run": "true"}}]})
    assert dry.requests[0].body("default")["metadata"]["annotations"] == {"kubernaut.ai/dry-run": "true"}
    assert "annotations" not in scenario().requests[0].body("default")["metadata"]


def test_the_demo_scenario_shows_both_manual_review_paths_and_a_dry_run():
    loaded = load_scenario(SCENARIO)
    assert {r.expect.skip_reason for r in loaded.requests} >= set(SkipReason)
    assert any(r.expect.outcome is Outcome.DRY_RUN for r in loaded.requests)


def test_notices_are_counted_against_the_scenario():
    run = observed(["Blocked ResourceBusy", "Executing", "Completed"], outcome="Remediated")
    notice = {"metadata": {"name": "review-1"}, "spec": {"type": "manual-review"}}
    assert check_requests(scenario(), run, [notice]) == [
        "NotificationRequests by type {'manual-review': 1}, expected {}"
    ]


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return f"{PREFIX}{name}", frozenset(labels.items())


def test_the_expected_metrics_follow_the_path():
    expected = expected_metrics(scenario())
    assert expected[key("blocked_total", namespace="default", reason="ResourceBusy")] == 1
    assert expected[key("blocked_total", namespace="default", reason="RecentlyRemediated")] == 0
    transitions = {k[1]: v for k, v in expected.items() if k[0] == f"{PREFIX}phase_transitions_total"}
    assert transitions == {
        frozenset({("namespace", "default"), ("from_phase", ""), ("to_phase", "Pending")}): 1,
        frozenset({("namespace", "default"), ("from_phase", "Pending"), ("to_phase", "Blocked")}): 1,
        frozenset({("namespace", "default"), ("from_phase", "Blocked"), ("to_phase", "Executing")}): 1,
        frozenset({("namespace", "default"), ("from_phase", "Executing"), ("to_phase", "Completed")}): 1,
    }
    assert expected[("kubernaut_workflowexecution_pipelinerun_creations_total", frozenset())] == 1


def test_metrics_that_disagree_are_named():
    samples = dict(expected_metrics(scenario()))
    assert check_metrics(scenario(), samples) == []
    samples[key("blocked_total", namespace="default", reason="ResourceBusy")] = 2
    samples[key("current_blocked", namespace="default", reason="ResourceBusy")] = 1
    samples[key("phase_transitions_total", namespace="default", from_phase="Blocked", to_phase="Failed")] = 1
    problems = check_metrics(scenario(), samples)
    assert f'{PREFIX}blocked_total{{namespace="default",reason="ResourceBusy"}} = 2, expected 1' in problems
    assert any(p.startswith(f"{PREFIX}current_blocked") for p in problems)
    assert any('to_phase="Failed"' in p and p.endswith("expected 0") for p in problems)


def test_the_table_has_the_columns_kubectl_shows_and_prints_a_row_only_when_one_changes():
    table = Table(scenario(), printer_columns())
    assert table.header().split() == ["NAME", "PHASE", "REASON", "TARGET", "BLOCKED-UNTIL", "AGE"]
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "creationTimestamp": "2030-01-01T00:00:00Z"},
        "spec": {"targetResource": {"kind": "Deployment", "name": "web"}},
        "status": {"phase": RemediationPhase.BLOCKED.value, "reason": "ResourceBusy"},
    }
    first = table.row(obj)
    assert first is not None and first.split()[:4] == ["web", "Blocked", "ResourceBusy", "web"]
    assert table.row(obj) is None, "only the age moved"
    obj["status"] = {"phase": "Executing"}
    assert (table.row(obj) or "").split()[:3] == ["web", "Executing", "web"]


@pytest.mark.parametrize(("seconds", "shown"), [(0, "0s"), (119, "119s"), (130, "2m10s"), (600, "10m")])
def test_ages_read_as_kubectl_prints_them(seconds, shown):
    assert human_age(seconds) == shown
