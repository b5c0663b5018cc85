"""Routing, row by row (SPEC 4.2), with an in-memory view and a fixed clock."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.chains import Link, LinkKind
from orchestrator.routing import (
    Decision,
    Execution,
    Request,
    RoutingSettings,
    Verdict,
    failure_chain,
    first_start_time,
    record_failure,
    route,
)
from shared.backoff import Backoff
from shared.models import (
    BlockReason,
    ExecutionPhase,
    FailurePhase,
    Outcome,
    RemediationPhase,
    RemediationRequest,
    RemediationRequestStatus,
    SkipReason,
)
from tests import factories

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
TARGET = "default/deployment/web"
FP = factories.fingerprint("signal")
SETTINGS = RoutingSettings(
    consecutive_failure_threshold=3,
    consecutive_failure_cooldown=timedelta(hours=1),
    recently_remediated_cooldown=timedelta(minutes=5),
    backoff=Backoff(timedelta(seconds=60), timedelta(seconds=600)),
)


def ago(**kwargs) -> datetime:
    return NOW - timedelta(**kwargs)


def wfe(
    name="wfe-old",
    phase=ExecutionPhase.COMPLETED,
    *,
    created=None,
    completed=None,
    workflow="restart-pods",
    execution_failure=None,
    acknowledged=False,
    namespace="default",
) -> Execution:
    return Execution(
        namespace, name, created or ago(hours=2), phase, workflow, completed, execution_failure, acknowledged
    )


def other_rr(
    name,
    phase=None,
    *,
    created=None,
    completed=None,
    failure_phase=None,
    outcome=None,
    count=0,
    next_allowed=None,
    namespace="default",
    started=None,
) -> Request:
    return Request(
        namespace, name, created or ago(hours=1), phase, completed, failure_phase, outcome, count, next_allowed, started
    )


def failed_rr(name, *, completed, count, next_allowed=None) -> Request:
    return other_rr(
        name,
        RemediationPhase.FAILED,
        completed=completed,
        failure_phase=FailurePhase.WORKFLOW_EXECUTION,
        count=count,
        next_allowed=next_allowed,
    )


def succeeded_rr(name, *, completed) -> Request:
    return other_rr(name, RemediationPhase.COMPLETED, completed=completed, outcome=Outcome.REMEDIATED)


@dataclass
class View:
    executions: list[Execution] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    fingerprint_namespace: str = "default"
    links: list[Link] = field(default_factory=list)
    acknowledged: list[datetime] = field(default_factory=list)
    dry_runs: list[Execution] = field(default_factory=list)

    def executions_on_target(self, target):
        return self.executions if target == TARGET else []

    def live_requests(self, namespace, fingerprint):
        return [r for r in self.requests if r.namespace == namespace and fingerprint == FP and r.live]

    def executed_requests(self, namespace, fingerprint):
        return [r for r in self.requests if r.namespace == namespace and fingerprint == FP and r.executed]

    def chain_links(self, namespace, fingerprint, target):
        return [link for link in self.links if namespace == "default" and fingerprint == FP and target == TARGET]

    def chain_acknowledgements(self, namespace, fingerprint):
        return self.acknowledged if namespace == "default" and fingerprint == FP else []

    def dry_runs_on_target(self, target):
        return self.dry_runs if target == TARGET else []


def the_rr(name="rr-new", created=None, workflow="restart-pods") -> RemediationRequest:
    obj = factories.remediation_request(name, workflow_id=workflow, fingerprint_seed="signal")
    obj["metadata"]["creationTimestamp"] = (created or NOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    return RemediationRequest.from_k8s(obj)


def decide(view: View, rr: RemediationRequest | None = None, **kwargs) -> Decision:
    return route(rr or the_rr(), view, NOW, SETTINGS, **kwargs)


def completed_link(name="rr-done", *, ended, count=0, created=None) -> Link:
    """A completed remediation (Remediated or DryRun) of the fingerprint on the target, with its stored count."""
    return Link(name, created or ended - timedelta(minutes=2), ended, LinkKind.COMPLETED, count)


def chain_of(count: int) -> list[Link]:
    """The history after which a request created now gets ineffective count `count`."""
    return [completed_link(ended=ago(minutes=10), count=count - 1)]


def dry_run(name="rr-dry", *, completed, workflow="restart-pods") -> Execution:
    return Execution(
        "default",
        name,
        completed - timedelta(seconds=1),
        ExecutionPhase.COMPLETED,
        workflow,
        completed,
        None,
        False,
        True,
    )


EXEC_FAILED = wfe(
    "wfe-failed", ExecutionPhase.FAILED, created=ago(minutes=30), completed=ago(minutes=20), execution_failure=True
)

ROWS = [
    # (description, view, expected verdict, expected reason)
    ("nothing in the way executes", View(), Verdict.EXECUTE, None),
    # 1 PreviousExecutionFailed
    (
        "last execution failed during execution: skip for manual review",
        View([EXEC_FAILED]),
        Verdict.SKIP,
        SkipReason.PREVIOUS_EXECUTION_FAILED,
    ),
    (
        "an acknowledged failed execution is ignored",
        View(
            [
                wfe(
                    "wfe-failed",
                    ExecutionPhase.FAILED,
                    completed=ago(minutes=20),
                    execution_failure=True,
                    acknowledged=True,
                )
            ]
        ),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a failure before execution does not need review",
        View(
            [
                wfe(
                    "wfe-failed",
                    ExecutionPhase.FAILED,
                    created=ago(hours=3),
                    completed=ago(hours=3),
                    execution_failure=False,
                )
            ]
        ),
        Verdict.EXECUTE,
        None,
    ),
    (
        "only the most recent execution counts for review",
        View(
            [
                EXEC_FAILED,
                wfe("wfe-newer", ExecutionPhase.COMPLETED, created=ago(minutes=15), completed=ago(minutes=10)),
            ]
        ),
        Verdict.EXECUTE,
        None,
    ),
    # 2 DuplicateInProgress
    (
        "an older live request of the fingerprint makes this a duplicate",
        View(requests=[other_rr("rr-old", RemediationPhase.EXECUTING, created=ago(minutes=5))]),
        Verdict.BLOCK,
        BlockReason.DUPLICATE_IN_PROGRESS,
    ),
    (
        "an older blocked request also counts as in progress",
        View(requests=[other_rr("rr-old", RemediationPhase.BLOCKED, created=ago(minutes=5))]),
        Verdict.BLOCK,
        BlockReason.DUPLICATE_IN_PROGRESS,
    ),
    (
        "a newer live request does not make this a duplicate",
        View(requests=[other_rr("rr-newer", RemediationPhase.PENDING, created=NOW + timedelta(seconds=1))]),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a finished older request is not in progress",
        View(requests=[succeeded_rr("rr-old", completed=ago(hours=2))]),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a request of another namespace is not a duplicate",
        View(requests=[other_rr("rr-old", RemediationPhase.EXECUTING, created=ago(minutes=5), namespace="other")]),
        Verdict.EXECUTE,
        None,
    ),
    # 3 IneffectiveChain
    (
        "the third remediation in a row followed by the signal again: manual review",
        View(links=chain_of(3)),
        Verdict.SKIP,
        SkipReason.INEFFECTIVE_CHAIN,
    ),
    (
        "two ineffective remediations are below the threshold",
        View(links=chain_of(2)),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a signal back later than the window after the last completion starts over",
        View(links=[completed_link(ended=ago(minutes=31), count=5)]),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a tripped chain stays tripped until acknowledged",
        View(links=[*chain_of(3), Link("rr-skipped", ago(minutes=5), ago(minutes=5), LinkKind.SKIPPED, 3)]),
        Verdict.SKIP,
        SkipReason.INEFFECTIVE_CHAIN,
    ),
    (
        "an acknowledged chain no longer counts",
        View(
            links=[*chain_of(3), Link("rr-skipped", ago(minutes=5), ago(minutes=5), LinkKind.SKIPPED, 3)],
            acknowledged=[ago(minutes=5)],
        ),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a failed execution after the completions ends the chain",
        View(links=[*chain_of(3), Link("rr-f", ago(minutes=8), ago(minutes=7), LinkKind.FAILED, 0)]),
        Verdict.EXECUTE,
        None,
    ),
    # 4 ConsecutiveFailures
    (
        "three failures in a row within the cooldown block the fingerprint",
        View(requests=[failed_rr("rr-f3", completed=ago(minutes=10), count=3)]),
        Verdict.BLOCK,
        BlockReason.CONSECUTIVE_FAILURES,
    ),
    (
        "the breaker opens after the cooldown",
        View(requests=[failed_rr("rr-f3", completed=ago(minutes=61), count=3)]),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a success after the failures breaks the chain",
        View(
            requests=[
                failed_rr("rr-f3", completed=ago(minutes=20), count=3),
                succeeded_rr("rr-ok", completed=ago(minutes=15)),
            ]
        ),
        Verdict.EXECUTE,
        None,
    ),
    # 4 ResourceBusy
    (
        "a running execution on the target blocks",
        View([wfe("wfe-run", ExecutionPhase.RUNNING, created=ago(minutes=1))]),
        Verdict.BLOCK,
        BlockReason.RESOURCE_BUSY,
    ),
    (
        "an execution without a phase yet is live and blocks",
        View([wfe("wfe-new", None, created=ago(seconds=1))]),
        Verdict.BLOCK,
        BlockReason.RESOURCE_BUSY,
    ),
    (
        "a pending execution blocks",
        View([wfe("wfe-p", ExecutionPhase.PENDING, created=ago(seconds=1))]),
        Verdict.BLOCK,
        BlockReason.RESOURCE_BUSY,
    ),
    # 5 RecentlyRemediated
    (
        "the same workflow completed on the target two minutes ago",
        View([wfe("wfe-done", ExecutionPhase.COMPLETED, completed=ago(minutes=2))]),
        Verdict.BLOCK,
        BlockReason.RECENTLY_REMEDIATED,
    ),
    (
        "another workflow completed recently does not block",
        View([wfe("wfe-done", ExecutionPhase.COMPLETED, completed=ago(minutes=2), workflow="scale-up")]),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a dry run of the same workflow completed on the target two minutes ago",
        View(dry_runs=[dry_run(completed=ago(minutes=2))]),
        Verdict.BLOCK,
        BlockReason.RECENTLY_REMEDIATED,
    ),
    (
        "a dry run of another workflow does not block",
        View(dry_runs=[dry_run(completed=ago(minutes=2), workflow="scale-up")]),
        Verdict.EXECUTE,
        None,
    ),
    (
        "a completion older than the cooldown does not block",
        View([wfe("wfe-done", ExecutionPhase.COMPLETED, completed=ago(minutes=6))]),
        Verdict.EXECUTE,
        None,
    ),
    # 6 ExponentialBackoff
    (
        "a recent failure's backoff is still running",
        View(
            requests=[failed_rr("rr-f1", completed=ago(seconds=30), count=1, next_allowed=NOW + timedelta(seconds=30))]
        ),
        Verdict.BLOCK,
        BlockReason.EXPONENTIAL_BACKOFF,
    ),
    (
        "an expired backoff lets the request run",
        View(requests=[failed_rr("rr-f1", completed=ago(minutes=2), count=1, next_allowed=ago(seconds=1))]),
        Verdict.EXECUTE,
        None,
    ),
]


@pytest.mark.parametrize(("view", "verdict", "reason"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_routing_table(view, verdict, reason):
    decision = decide(view)
    assert (decision.verdict, decision.reason) == (verdict, reason)


ORDER = [
    (
        "PreviousExecutionFailed before DuplicateInProgress",
        View([EXEC_FAILED], [other_rr("rr-old", RemediationPhase.EXECUTING, created=ago(minutes=5))]),
        SkipReason.PREVIOUS_EXECUTION_FAILED,
    ),
    (
        "DuplicateInProgress before IneffectiveChain",
        View(requests=[other_rr("rr-old", RemediationPhase.BLOCKED, created=ago(minutes=5))], links=chain_of(3)),
        BlockReason.DUPLICATE_IN_PROGRESS,
    ),
    (
        "IneffectiveChain before ConsecutiveFailures",
        View(requests=[failed_rr("rr-f3", completed=ago(minutes=10), count=3)], links=chain_of(3)),
        SkipReason.INEFFECTIVE_CHAIN,
    ),
    (
        "IneffectiveChain before ResourceBusy",
        View([wfe("wfe-run", ExecutionPhase.RUNNING, created=ago(minutes=1))], links=chain_of(3)),
        SkipReason.INEFFECTIVE_CHAIN,
    ),
    (
        "DuplicateInProgress before ConsecutiveFailures",
        View(
            requests=[
                other_rr("rr-old", RemediationPhase.BLOCKED, created=ago(minutes=5)),
                failed_rr("rr-f3", completed=ago(minutes=10), count=3),
            ]
        ),
        BlockReason.DUPLICATE_IN_PROGRESS,
    ),
    (
        "ConsecutiveFailures before ResourceBusy",
        View([wfe("wfe-run", ExecutionPhase.RUNNING)], [failed_rr("rr-f3", completed=ago(minutes=10), count=3)]),
        BlockReason.CONSECUTIVE_FAILURES,
    ),
    (
        "ResourceBusy before RecentlyRemediated",
        View(
            [
                wfe("wfe-done", ExecutionPhase.COMPLETED, completed=ago(minutes=2)),
                wfe("wfe-run", ExecutionPhase.RUNNING, created=ago(minutes=1)),
            ]
        ),
        BlockReason.RESOURCE_BUSY,
    ),
    (
        "RecentlyRemediated before ExponentialBackoff",
        View(
            [wfe("wfe-done", ExecutionPhase.COMPLETED, completed=ago(minutes=2))],
            [failed_rr("rr-f1", completed=ago(seconds=30), count=1, next_allowed=NOW + timedelta(seconds=30))],
        ),
        BlockReason.RECENTLY_REMEDIATED,
    ),
]


@pytest.mark.parametrize(("view", "reason"), [row[1:] for row in ORDER], ids=[row[0] for row in ORDER])
def test_checks_run_in_the_specified_order(view, reason):
    assert decide(view).reason == reason


def test_an_ineffective_chain_skip_names_the_chain_and_how_to_acknowledge_it():
    decision = decide(View(links=chain_of(3)))
    assert decision.ineffective_count == 3
    assert decision.blocking_workflow_execution is None
    assert decision.incident == f"default/{FP}@rr-done"
    assert "kubernaut.ai/ineffective-chain-acknowledged" in decision.message and "3 remediations" in decision.message


def test_every_request_of_one_chain_names_the_same_incident():
    links = [*chain_of(3), Link("rr-skipped", ago(minutes=5), ago(minutes=5), LinkKind.SKIPPED, 3)]
    first = decide(View(links=chain_of(3)))
    later = decide(View(links=links), the_rr("rr-later", created=NOW + timedelta(hours=5)))
    assert first.incident == later.incident


def test_the_count_is_carried_on_execute_and_on_decisions_after_check_3_only():
    assert decide(View(links=chain_of(2))).ineffective_count == 2
    assert decide(View()).ineffective_count == 0
    duplicate = View(requests=[other_rr("rr-old", RemediationPhase.BLOCKED, created=ago(minutes=5))])
    assert decide(duplicate).ineffective_count is None  # check 3 did not run: nothing to store


def test_threshold_zero_turns_the_chain_check_off_but_still_counts():
    off = dataclasses.replace(SETTINGS, ineffective_chain_threshold=0)
    decision = route(the_rr(), View(links=chain_of(9)), NOW, off)
    assert (decision.verdict, decision.ineffective_count) == (Verdict.EXECUTE, 9)


def test_a_recently_remediated_block_by_a_dry_run_names_no_workflow_execution():
    decision = decide(View(dry_runs=[dry_run(completed=ago(minutes=2))]))
    assert decision.blocking_workflow_execution is None
    assert decision.until == ago(minutes=2) + SETTINGS.recently_remediated_cooldown
    assert "dry run" in decision.message and "default/rr-dry" in decision.message


def test_skip_names_the_failed_execution_and_how_to_acknowledge_it():
    decision = decide(View([EXEC_FAILED]))
    assert decision.blocking_workflow_execution == "default/wfe-failed"
    assert decision.incident == "default/wfe-failed"
    assert "kubernaut.ai/execution-failure-acknowledged" in decision.message


def test_the_oldest_live_request_wins():
    view = View(
        requests=[
            other_rr("rr-b", RemediationPhase.BLOCKED, created=ago(minutes=5), started=ago(minutes=5)),
            other_rr("rr-c", RemediationPhase.PENDING, created=ago(minutes=1)),
        ]
    )
    assert decide(view).duplicate_of == "rr-b"


SECOND = NOW.replace(microsecond=0)
TIE_BREAKS = [
    # (description, others, this request's name, its startTime, expected duplicateOf)
    (
        "issue 17.2: a request routed earlier in the same second wins, though its name sorts last",
        [other_rr("alert-zq7x", RemediationPhase.EXECUTING, created=SECOND, started=SECOND)],
        "alert-b2kd",
        None,
        "alert-zq7x",
    ),
    (
        "routed now comes before a same-second request nobody routed yet, whatever the names",
        [other_rr("alert-a", None, created=SECOND)],
        "alert-z",
        None,
        None,
    ),
    (
        "between two routed requests of one second the earlier startTime wins, not the name",
        [
            other_rr("alert-a", RemediationPhase.BLOCKED, created=SECOND, started=SECOND + timedelta(milliseconds=9)),
            other_rr("alert-z", RemediationPhase.EXECUTING, created=SECOND, started=SECOND + timedelta(milliseconds=3)),
        ],
        "alert-m",
        None,
        "alert-z",
    ),
    (
        "a re-routed duplicate keeps its place: routed after its original",
        [other_rr("alert-z", RemediationPhase.EXECUTING, created=SECOND, started=SECOND + timedelta(milliseconds=3))],
        "alert-a",
        SECOND + timedelta(milliseconds=4),
        "alert-z",
    ),
    (
        "a re-routed original stays the original",
        [other_rr("alert-a", RemediationPhase.BLOCKED, created=SECOND, started=SECOND + timedelta(milliseconds=4))],
        "alert-z",
        SECOND + timedelta(milliseconds=3),
        None,
    ),
    (
        "the same startTime falls back to the name",
        [other_rr("alert-a", RemediationPhase.EXECUTING, created=SECOND, started=SECOND)],
        "alert-z",
        SECOND,
        "alert-a",
    ),
    (
        "an earlier creationTimestamp wins over an earlier startTime",
        [other_rr("alert-z", RemediationPhase.BLOCKED, created=SECOND - timedelta(seconds=1), started=SECOND)],
        "alert-a",
        SECOND - timedelta(seconds=5),
        "alert-z",
    ),
]


@pytest.mark.parametrize(
    ("others", "name", "started", "duplicate_of"), [row[1:] for row in TIE_BREAKS], ids=[row[0] for row in TIE_BREAKS]
)
def test_same_second_duplicates_are_ordered_by_who_was_routed_first(others, name, started, duplicate_of):
    rr = the_rr(name, created=SECOND)
    if started is not None:
        rr = rr.model_copy(update={"status": RemediationRequestStatus(start_time=started)})
    assert decide(View(requests=others), rr).duplicate_of == duplicate_of


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "zq7x", "b2kd"]), st.integers(0, 1)),
        min_size=2,
        max_size=5,
        unique_by=lambda t: t[0],
    ),
    st.randoms(use_true_random=False),
)
def test_same_second_duplicates_agree_on_one_original_whatever_the_routing_order(requests, random):
    """Route every request once, in any order, each decision written before the next (as the fingerprint lock makes
    it), on a clock that never ticks; then route them all again in another order. Exactly one request of the earliest
    second is the original and stays it; every other waits on an older live request, never in a cycle."""
    created = {name: SECOND + timedelta(seconds=second) for name, second in requests}
    started: dict[str, datetime] = {}

    def view_for(name: str) -> View:
        return View(
            requests=[
                other_rr(
                    o, RemediationPhase.BLOCKED if o in started else None, created=created[o], started=started.get(o)
                )
                for o in created
                if o != name
            ]
        )

    def route_one(name: str) -> str | None:
        rr = the_rr(name, created=created[name])
        if name in started:
            rr = rr.model_copy(update={"status": RemediationRequestStatus(start_time=started[name])})
        view = view_for(name)
        decision = decide(view, rr)
        started.setdefault(name, first_start_time("default", FP, view, SECOND))  # written with the decision
        return decision.duplicate_of

    def settle(order: list[str]) -> dict[str, str | None]:
        decisions = {name: route_one(name) for name in order}
        assert len([name for name, of in decisions.items() if of is None]) == 1, decisions
        for name, original in decisions.items():
            seen, waits_on = {name}, original
            while waits_on is not None:
                assert waits_on not in seen, f"{name} waits on itself through {seen}"
                seen.add(waits_on)
                waits_on = decisions[waits_on]
        return decisions

    order = [name for name, _ in requests]
    random.shuffle(order)
    first = settle(order)
    original = next(name for name, of in first.items() if of is None)
    assert created[original] == min(created.values())
    random.shuffle(order)
    again = settle(order)
    assert next(name for name, of in again.items() if of is None) == original


def test_a_first_routing_starts_after_every_routed_request_of_the_fingerprint():
    view = View(requests=[other_rr("rr-a", RemediationPhase.EXECUTING, created=NOW, started=NOW)])
    assert first_start_time("default", FP, view, NOW) == NOW + timedelta(microseconds=1)
    assert first_start_time("default", FP, view, NOW - timedelta(seconds=2)) == NOW + timedelta(microseconds=1)
    assert first_start_time("default", FP, view, NOW + timedelta(seconds=1)) == NOW + timedelta(seconds=1)
    assert first_start_time("default", FP, View(), NOW) == NOW


# -- failure history (SPEC 4.3) ---------------------------------------------------------------------------------
def test_failure_chain_reads_the_newest_executed_request():
    chain = failure_chain(
        [
            failed_rr("rr-1", completed=ago(minutes=30), count=1),
            failed_rr("rr-2", completed=ago(minutes=10), count=2, next_allowed=NOW),
        ]
    )
    assert (chain.count, chain.last_failure, chain.source) == (2, ago(minutes=10), "rr-2")
    assert (
        failure_chain(
            [failed_rr("rr-1", completed=ago(minutes=30), count=1), succeeded_rr("rr-2", completed=ago(minutes=5))]
        ).count
        == 0
    )
    assert failure_chain([]).count == 0


@pytest.mark.parametrize(
    ("history", "count"),
    [
        ([], 1),
        ([failed_rr("a", completed=ago(minutes=30), count=1)], 2),
        ([failed_rr("a", completed=ago(minutes=30), count=1), failed_rr("b", completed=ago(minutes=20), count=2)], 3),
        ([failed_rr("a", completed=ago(minutes=30), count=1), succeeded_rr("b", completed=ago(minutes=20))], 1),
        (
            [
                succeeded_rr("a", completed=ago(minutes=40)),
                failed_rr("b", completed=ago(minutes=30), count=1),
                failed_rr("c", completed=ago(minutes=20), count=2),
            ],
            3,
        ),
    ],
    ids=["first failure", "second", "third", "a success breaks the chain", "count stops at the success"],
)
def test_record_failure_counts_consecutive_failures_newest_first(history, count):
    assert record_failure("rr-now", NOW, history, FP, SETTINGS)[0] == count


def test_requests_that_never_executed_neither_count_nor_break_the_chain():
    never_ran = [
        other_rr(
            "dup",
            RemediationPhase.FAILED,
            completed=ago(minutes=25),
            failure_phase=FailurePhase.DEDUPLICATED,
            outcome=Outcome.INHERITED_FAILED,
        ),
        other_rr(
            "expired",
            RemediationPhase.FAILED,
            completed=ago(minutes=24),
            failure_phase=FailurePhase.BLOCKED,
            outcome=Outcome.NOT_EXECUTED,
        ),
        other_rr(
            "skipped",
            RemediationPhase.FAILED,
            completed=ago(minutes=23),
            failure_phase=FailurePhase.ROUTING,
            outcome=Outcome.MANUAL_REVIEW_REQUIRED,
        ),
    ]
    assert not any(r.executed for r in never_ran)
    executed = [r for r in [failed_rr("a", completed=ago(minutes=30), count=1), *never_ran] if r.executed]
    assert record_failure("rr-now", NOW, executed, FP, SETTINGS)[0] == 2


def test_backoff_is_stored_below_the_threshold_and_reproducible():
    count, next_allowed = record_failure("rr-now", NOW, [], FP, SETTINGS)
    assert count == 1
    assert timedelta(seconds=60) <= next_allowed - NOW <= timedelta(seconds=66)
    assert record_failure("rr-now", NOW, [], FP, SETTINGS) == (count, next_allowed)
    history = [failed_rr("a", completed=ago(minutes=30), count=1), failed_rr("b", completed=ago(minutes=20), count=2)]
    assert record_failure("rr-now", NOW, history, FP, SETTINGS) == (3, None)


def test_a_new_request_of_a_fingerprint_that_failed_twice_waits_for_the_backoff():
    count, next_allowed = record_failure(
        "rr-2", ago(seconds=10), [failed_rr("rr-1", completed=ago(minutes=5), count=1)], FP, SETTINGS
    )
    assert count == 2
    view = View(
        requests=[
            failed_rr("rr-1", completed=ago(minutes=5), count=1),
            failed_rr("rr-2", completed=ago(seconds=10), count=count, next_allowed=next_allowed),
        ]
    )
    decision = decide(view)
    assert decision.reason is BlockReason.EXPONENTIAL_BACKOFF
    assert decision.until == next_allowed
