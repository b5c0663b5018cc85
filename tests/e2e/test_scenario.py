"""The demo's scenario end to end: every request goes and ends as examples/demo/scenario.yaml says, with the
notices it names, and the controllers' metrics agree with what happened.

Each request is read back from the API server after the run; its path (every phase it showed) comes from the
driver's watch. The expectations come from the scenario file alone, so changing one there changes the test.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from executor.metrics import PREFIX as EXECUTOR
from orchestrator.metrics import PREFIX as ORCHESTRATOR
from orchestrator.view import workflow_execution_name
from sandbox.scenario import TIME_BASED, check_metrics, check_requests, expected_metrics, load_scenario
from shared.models import BlockReason, NotificationType, Outcome, RemediationPhase, SkipReason
from tests.e2e.conftest import Run

pytestmark = pytest.mark.slow

SCENARIO = load_scenario()
NAMES = [request.name for request in SCENARIO.requests]


def sample(run: Run, name: str, **labels: str) -> float:
    return run.samples.get((name, frozenset(labels.items())), 0.0)


def test_the_scenario_exercises_every_block_reason_and_the_manual_review_path():
    blocks = {step.reason for r in SCENARIO.requests for step in r.expect.path if step.reason}
    assert blocks == set(BlockReason)
    assert {r.expect.skip_reason for r in SCENARIO.requests} >= set(SkipReason)
    assert Outcome.DRY_RUN in {r.expect.outcome for r in SCENARIO.requests}


def test_every_process_stopped_cleanly_and_every_injected_fault_fired(scenario_run: Run):
    assert scenario_run.exit_codes == {"orchestrator": 0, "executor": 0, "tekton": 0}
    assert scenario_run.faults_fired == [1, 1, 1]


@pytest.mark.parametrize("name", NAMES)
def test_the_request_ends_as_the_scenario_expects(scenario_run: Run, name: str):
    expect = SCENARIO.request(name).expect
    status = scenario_run.requests[name].get("status") or {}
    assert status.get("phase") == expect.phase
    assert status.get("outcome") == expect.outcome
    assert status.get("failurePhase") == expect.failure_phase
    assert status.get("failureReason") == expect.failure_reason
    assert status.get("skipReason") == expect.skip_reason
    assert status.get("requiresManualReview", False) is (expect.skip_reason is not None)
    assert status.get("blockReason") is None and status.get("blockedUntil") is None, "a terminal request is unblocked"
    if any(step.phase is RemediationPhase.EXECUTING for step in expect.path):
        uid = scenario_run.requests[name]["metadata"]["uid"]
        assert status["workflowExecutionRef"]["name"] == workflow_execution_name(name, uid)
    else:
        assert "workflowExecutionRef" not in status, "it never executed"


@pytest.mark.parametrize("name", NAMES)
def test_the_request_goes_the_path_the_scenario_expects(scenario_run: Run, name: str):
    assert tuple(scenario_run.observed.paths[name]) == SCENARIO.request(name).expect.path


@pytest.mark.parametrize("name", NAMES)
def test_the_request_names_the_notices_the_scenario_expects(scenario_run: Run, name: str):
    types = {nr["metadata"]["name"]: nr["spec"]["type"] for nr in scenario_run.notifications}
    refs = (scenario_run.requests[name].get("status") or {}).get("notificationRequestRefs") or []
    assert [types[ref["name"]] for ref in refs] == list(SCENARIO.request(name).expect.notifications)


def test_one_notice_per_incident_each_owned_by_the_request_that_raised_it(scenario_run: Run):
    assert Counter(nr["spec"]["type"] for nr in scenario_run.notifications) == SCENARIO.notifications
    uids = {r["metadata"]["uid"]: name for name, r in scenario_run.requests.items()}
    for nr in scenario_run.notifications:
        (owner,) = nr["metadata"]["ownerReferences"]
        assert uids[owner["uid"]] == nr["spec"]["remediationRequestRef"]["name"]
    for reason in SkipReason:
        reviews = {
            tuple(ref["name"] for ref in (r.get("status") or {}).get("notificationRequestRefs") or [])
            for name, r in scenario_run.requests.items()
            if SCENARIO.request(name).expect.skip_reason is reason
        }
        assert len(reviews) == 1, f"every request skipped for the same {reason} names the same notice"


def test_each_skip_and_dry_run_is_counted_as_a_routing_decision(scenario_run: Run):
    skips = Counter(r.expect.skip_reason for r in SCENARIO.requests if r.expect.skip_reason)
    for reason in SkipReason:
        labels = {"namespace": SCENARIO.namespace, "decision": "Skip", "reason": reason}
        assert sample(scenario_run, f"{ORCHESTRATOR}routing_decisions_total", **labels) == skips[reason], reason
    dry_runs = sum(r.expect.outcome is Outcome.DRY_RUN for r in SCENARIO.requests)
    labels = {"namespace": SCENARIO.namespace, "decision": "DryRun", "reason": ""}
    assert sample(scenario_run, f"{ORCHESTRATOR}routing_decisions_total", **labels) == dry_runs


@pytest.mark.parametrize("name", [r.name for r in SCENARIO.requests if r.expect.outcome is Outcome.DRY_RUN])
def test_a_dry_run_names_what_would_have_run_and_creates_nothing(scenario_run: Run, name: str):
    request = SCENARIO.request(name)
    status = scenario_run.requests[name]["status"]
    body = request.body(SCENARIO.namespace)["spec"]
    for part in (request.workflow, body["workflowRef"]["executionBundle"], f"{SCENARIO.namespace}/deployment/"):
        assert part in status["message"], part
    assert "workflowExecutionRef" not in status  # and the executor's run count (above) has no run for it


@pytest.mark.parametrize("name", [r.name for r in SCENARIO.requests if r.expect.ineffective_count])
def test_the_ineffective_count_is_stored_as_the_scenario_expects(scenario_run: Run, name: str):
    status = scenario_run.requests[name]["status"]
    assert status["ineffectiveCount"] == SCENARIO.request(name).expect.ineffective_count


def test_blocked_total_counts_each_block_the_scenario_causes(scenario_run: Run):
    blocks = Counter(step.reason for r in SCENARIO.requests for step in r.expect.path if step.reason)
    for reason in BlockReason:
        labels = {"namespace": SCENARIO.namespace, "reason": reason}
        assert sample(scenario_run, f"{ORCHESTRATOR}blocked_total", **labels) == blocks[reason], reason
        expired = blocks[reason] if reason in TIME_BASED else 0
        assert sample(scenario_run, f"{ORCHESTRATOR}blocked_cooldown_expired_total", **labels) == expired, reason
    assert sample(scenario_run, f"{ORCHESTRATOR}blocked_expiry_lag_seconds_count") == sum(
        blocks[reason] for reason in TIME_BASED
    )


def test_nothing_is_blocked_at_the_end(scenario_run: Run):
    current = {k: v for k, v in scenario_run.samples.items() if k[0] == f"{ORCHESTRATOR}current_blocked"}
    assert all(value == 0 for value in current.values()), current


def test_notification_counters_agree_with_the_notices(scenario_run: Run):
    for kind in NotificationType:
        created = sample(scenario_run, f"{ORCHESTRATOR}notification_requests_created_total", type=kind)
        assert created == SCENARIO.notifications.get(kind, 0), kind


def test_phase_transitions_agree_with_the_paths(scenario_run: Run):
    transitions = {k: v for k, v in expected_metrics(SCENARIO).items() if "phase_transitions" in k[0]}
    actual = {k: v for k, v in scenario_run.samples.items() if k[0] == f"{ORCHESTRATOR}phase_transitions_total"}
    assert {k: v for k, v in actual.items() if v} == transitions
    changes = sum(a.phase != b.phase for r in SCENARIO.requests for a, b in pairwise(r.expect.path))
    assert sum(transitions.values()) == 2 * len(SCENARIO.requests) + changes  # "" -> Pending -> first, then each


def test_the_executor_counts_one_run_per_execution(scenario_run: Run):
    paths = [r.expect.path for r in SCENARIO.requests]
    runs = [p[i + 1].phase for p in paths for i, step in enumerate(p) if step.phase is RemediationPhase.EXECUTING]
    assert sample(scenario_run, f"{EXECUTOR}pipelinerun_creations_total") == len(runs)
    for outcome in (RemediationPhase.COMPLETED, RemediationPhase.FAILED):
        assert sample(scenario_run, f"{EXECUTOR}executions_total", outcome=outcome) == runs.count(outcome)


def test_the_demo_checks_find_nothing_wrong_in_this_run(scenario_run: Run):
    """The checks `make demo` bases its exit status on agree with the assertions above."""
    assert check_requests(SCENARIO, scenario_run.observed, scenario_run.notifications) == []
    assert check_metrics(SCENARIO, scenario_run.samples) == []
