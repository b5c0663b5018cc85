"""`explain` (SPEC 9, `kubectl kubernaut explain`): every check with its facts, and always route's decision."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.routing import CHECKS, Execution, Request, explain, route
from shared.models import BlockReason, ExecutionPhase, FailurePhase, Outcome, RemediationPhase, SkipReason
from tests.unit.orchestrator.test_routing import (
    EXEC_FAILED,
    NOW,
    SETTINGS,
    View,
    ago,
    failed_rr,
    other_rr,
    the_rr,
    wfe,
)

# Times near NOW, at whole seconds and in between, so same-second ties and cooldown edges come up often.
times = st.builds(lambda ms: NOW + timedelta(milliseconds=ms), st.integers(-4 * 3_600_000, 120_000)) | st.sampled_from(
    [NOW, ago(seconds=1), ago(minutes=5), ago(hours=1)]
)
names = st.sampled_from(["rr-a", "rr-b", "rr-new", "rr-z", "wfe-1", "wfe-2"])

executions = st.builds(
    Execution,
    namespace=st.sampled_from(["default", "other"]),
    name=names,
    created=times,
    phase=st.none() | st.sampled_from(ExecutionPhase),
    workflow_id=st.sampled_from(["restart-pods", "scale-up"]),
    completion_time=st.none() | times,
    was_execution_failure=st.none() | st.booleans(),
    acknowledged=st.booleans(),
)
requests = st.builds(
    Request,
    namespace=st.just("default"),
    name=names,
    created=times,
    phase=st.none() | st.sampled_from(RemediationPhase),
    completion_time=st.none() | times,
    failure_phase=st.none() | st.sampled_from(FailurePhase),
    outcome=st.none() | st.sampled_from(Outcome),
    consecutive_failure_count=st.integers(0, 5),
    next_allowed_execution=st.none() | times,
    start_time=st.none() | times,
)
views = st.builds(View, st.lists(executions, max_size=5), st.lists(requests, max_size=6))


@settings(max_examples=400, deadline=None)
@given(view=views, created=times, bypass=st.booleans(), workflow=st.sampled_from(["restart-pods", "scale-up"]))
def test_explain_always_decides_what_route_decides(view, created, bypass, workflow):
    rr = the_rr(created=created, workflow=workflow)
    explanation = explain(rr, view, NOW, SETTINGS, bypass_time_blocks=bypass)
    assert explanation.decision == route(rr, view, NOW, SETTINGS, bypass_time_blocks=bypass)
    assert [c.check for c in explanation.checks] == [c.name for c in CHECKS]
    deciding = next((c for c in explanation.checks if c.matched and not c.bypassed), None)
    assert (deciding.decision if deciding else None) == (
        None if explanation.decision.reason is None else explanation.decision
    )
    for result in explanation.checks:
        assert result.matched == (result.decision is not None)
        assert result.bypassed == (bypass and result.check in {c.name for c in CHECKS if c.time_based})
        json.dumps(dict(result.facts))  # JSON-ready


def test_every_check_is_evaluated_even_after_the_first_match():
    view = View(
        [EXEC_FAILED, wfe("wfe-run", ExecutionPhase.RUNNING)],
        [failed_rr("rr-f3", completed=ago(minutes=10), count=3)],
    )
    explanation = explain(the_rr(), view, NOW, SETTINGS)
    matched = {c.check for c in explanation.checks if c.matched}
    assert matched == {"PreviousExecutionFailed", "ConsecutiveFailures", "ResourceBusy"}
    assert explanation.decision.reason is SkipReason.PREVIOUS_EXECUTION_FAILED


def test_facts_name_the_objects_and_times_behind_each_answer():
    view = View(
        [wfe("wfe-done", ExecutionPhase.COMPLETED, completed=ago(minutes=2))],
        [other_rr("rr-old", RemediationPhase.EXECUTING, created=ago(minutes=5))],
    )
    checks = {c.check: c for c in explain(the_rr(), view, NOW, SETTINGS).checks}
    assert checks["DuplicateInProgress"].facts["duplicateOf"] == "rr-old"
    assert checks["DuplicateInProgress"].decision.reason is BlockReason.DUPLICATE_IN_PROGRESS
    recent = checks["RecentlyRemediated"]
    assert recent.matched and recent.facts["lastCompletion"] == "default/wfe-done"
    assert recent.facts["cooldownEnds"] == "2026-11-22T12:03:00Z"
    assert not checks["ResourceBusy"].matched and checks["ResourceBusy"].facts["liveWorkflowExecutions"] == 0
    assert checks["PreviousExecutionFailed"].facts["lastWorkflowExecution"] == "default/wfe-done"


def test_a_manual_unblock_marks_the_time_based_checks_bypassed_and_they_do_not_decide():
    view = View(requests=[failed_rr("rr-f3", completed=ago(minutes=10), count=3)])
    explanation = explain(the_rr(), view, NOW, SETTINGS, bypass_time_blocks=True)
    breaker = next(c for c in explanation.checks if c.check == "ConsecutiveFailures")
    assert breaker.matched and breaker.bypassed
    assert breaker.facts["cooldownEnds"] == "2026-11-22T12:50:00Z"
    assert explanation.decision == route(the_rr(), view, NOW, SETTINGS, bypass_time_blocks=True)
    assert explanation.decision.reason is None
