"""Check 3 (IneffectiveChain) and dry runs in the routing table: route() and explain() agree, and the count stored
with a decision is the chain's, whatever else is in the cache."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.chains import Link, LinkKind, ineffective_chain
from orchestrator.routing import CHECKS, Execution, explain, route
from shared.models import ExecutionPhase, SkipReason
from tests.unit.orchestrator.test_explain import executions, names, requests, times
from tests.unit.orchestrator.test_routing import NOW, SETTINGS, View, the_rr

links = st.builds(
    Link,
    name=names,
    created=times,
    time=times,
    kind=st.sampled_from(LinkKind),
    ineffective_count=st.integers(0, 5),
)
dry_runs = st.builds(
    lambda name, completed, workflow: Execution(
        "default", name, completed, ExecutionPhase.COMPLETED, workflow, completed, None, False, True
    ),
    names,
    times,
    st.sampled_from(["restart-pods", "scale-up"]),
)
views = st.builds(
    View,
    st.lists(executions, max_size=4),
    st.lists(requests, max_size=4),
    st.just("default"),
    st.lists(links, max_size=6),
    st.lists(times, max_size=2),
    st.lists(dry_runs, max_size=3),
)
CHAIN = [c.name for c in CHECKS].index(SkipReason.INEFFECTIVE_CHAIN)


@settings(max_examples=400, deadline=None)
@given(
    view=views,
    created=times,
    bypass=st.booleans(),
    threshold=st.integers(0, 4),
    workflow=st.sampled_from(["restart-pods", "scale-up"]),
)
def test_route_and_explain_agree_and_carry_the_chains_count(view, created, bypass, threshold, workflow):
    routing = dataclasses.replace(SETTINGS, ineffective_chain_threshold=threshold)
    rr = the_rr(created=created, workflow=workflow)
    decided = route(rr, view, NOW, routing, bypass_time_blocks=bypass)
    explanation = explain(rr, view, NOW, routing, bypass_time_blocks=bypass)
    assert explanation.decision == decided
    assert explanation.decision.ineffective_count == decided.ineffective_count
    expected = ineffective_chain(
        created.replace(microsecond=0),
        [link for link in view.links if link.name != "rr-new"],
        view.acknowledged,
        routing.ineffective_window,
    ).count
    earlier_matched = any(r.matched and not r.bypassed for r in explanation.checks[:CHAIN])
    if earlier_matched:
        assert decided.ineffective_count is None, "check 3 never ran, so there is nothing to store"
    else:
        assert decided.ineffective_count == expected
        assert (decided.reason is SkipReason.INEFFECTIVE_CHAIN) == (threshold > 0 and expected >= threshold)


@settings(max_examples=200, deadline=None)
@given(view=views, created=times)
def test_a_dry_run_blocks_like_a_completed_execution_of_the_same_workflow(view, created):
    """Replacing every dry run by a completed WorkflowExecution of the same workflow and time gives check 6 the same
    answer and expiry (only the blocking reference differs: a dry run has no WorkflowExecution)."""
    # The request's own dry run (the view may still hold it while its status is written) never blocks it.
    as_executions = [dataclasses.replace(d, dry_run=False) for d in view.dry_runs if d.name != "rr-new"]
    real = dataclasses.replace(view, executions=[*view.executions, *as_executions], dry_runs=[])
    rr = the_rr(created=created)

    def recently_remediated(v: View):
        (result,) = [c for c in explain(rr, v, NOW, SETTINGS).checks if c.check == "RecentlyRemediated"]
        return result.matched, result.decision.until if result.decision else None

    assert recently_remediated(view) == recently_remediated(real)
