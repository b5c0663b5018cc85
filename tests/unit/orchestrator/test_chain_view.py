"""What check 3 and check 6 read through the indexes (SPEC 4.8, 4.9): exactly what a scan of the cache would give.

A chain is never counted across namespaces, fingerprints or targets, because its links are filed under all three;
dry-run and real completions are the same kind of link; only completed dry runs count as completions on a target.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.chains import CHAIN_ACKNOWLEDGED_ANNOTATION, LinkKind
from orchestrator.view import RR_INDEXERS, CacheView, dry_run_from, link_from, target_of
from shared.kubetime import format_time
from shared.runtime.store import Indexer, object_key
from tests import factories

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
NAMESPACES = ["team-a", "team-b"]
SEEDS = ["leak", "disk"]
TARGETS = [("Deployment", "web", "team-a"), ("Deployment", "WEB", "team-a"), ("Node", "node-1", None)]
STATUSES = [
    {"phase": "Completed", "outcome": "Remediated"},
    {"phase": "Completed", "outcome": "DryRun"},
    {"phase": "Completed", "outcome": "InheritedCompleted"},
    {"phase": "Failed", "failurePhase": "WorkflowExecution", "failureReason": "TaskFailed"},
    {"phase": "Failed", "failurePhase": "Routing", "skipReason": "IneffectiveChain", "outcome": "ManualReviewRequired"},
    {"phase": "Failed", "failurePhase": "Routing", "skipReason": "PreviousExecutionFailed"},
    {"phase": "Failed", "failurePhase": "Deduplicated", "outcome": "InheritedFailed"},
    {"phase": "Blocked", "blockReason": "RecentlyRemediated"},
    {"phase": "Executing"},
    {"phase": "TimedOut"},
    {},
]

requests = st.builds(
    lambda n, ns, seed, target, status, count, minute, acked, workflow: (
        n,
        ns,
        seed,
        target,
        status,
        count,
        minute,
        acked,
        workflow,
    ),
    st.integers(0, 30),
    st.sampled_from(NAMESPACES),
    st.sampled_from(SEEDS),
    st.sampled_from(TARGETS),
    st.sampled_from(STATUSES),
    st.none() | st.integers(0, 6),
    st.integers(0, 240),
    st.booleans(),
    st.sampled_from(["restart-pods", "scale-up"]),
)


def _object(n, ns, seed, target, status, count, minute, acked, workflow):
    obj = factories.remediation_request(f"rr-{n}", ns, target=target, fingerprint_seed=seed, workflow_id=workflow)
    obj["metadata"]["creationTimestamp"] = format_time(T0 + timedelta(minutes=minute))
    if acked:
        obj["metadata"]["annotations"] = {CHAIN_ACKNOWLEDGED_ANNOTATION: "alice"}
    full = dict(status)
    if status.get("phase") in ("Completed", "Failed"):
        full["completionTime"] = format_time(T0 + timedelta(minutes=minute + 3))
    if count is not None:
        full["ineffectiveCount"] = count
    return {**obj, "status": full}


@settings(max_examples=300, deadline=None)
@given(history=st.lists(requests, max_size=25))
def test_the_indexes_answer_what_a_scan_of_the_cache_answers(history):
    store = Indexer(RR_INDEXERS)
    for item in history:  # later items of the same name replace earlier ones: indexes are refiled on update
        obj = _object(*item)
        store.upsert(object_key(obj), obj)
    view = CacheView(store, Indexer())
    every = store.list()
    for ns in NAMESPACES:
        for seed in SEEDS:
            fingerprint = factories.fingerprint(seed)
            for kind, name, target_ns in TARGETS:
                target = target_of({"metadata": {}, "spec": {"targetResource": _target(kind, name, target_ns)}})
                expected = [
                    link_from(o)
                    for o in every
                    if o["metadata"]["namespace"] == ns
                    and o["spec"]["signalFingerprint"] == fingerprint
                    and target_of(o) == target
                    and link_from(o) is not None
                ]
                assert sorted(view.chain_links(ns, fingerprint, target), key=repr) == sorted(expected, key=repr)
            acks = [
                o["metadata"]["creationTimestamp"]
                for o in every
                if o["metadata"]["namespace"] == ns
                and o["spec"]["signalFingerprint"] == fingerprint
                and (o["metadata"].get("annotations") or {}).get(CHAIN_ACKNOWLEDGED_ANNOTATION)
            ]
            assert sorted(format_time(t) for t in view.chain_acknowledgements(ns, fingerprint)) == sorted(acks)
    for kind, name, target_ns in TARGETS:
        target = target_of({"metadata": {}, "spec": {"targetResource": _target(kind, name, target_ns)}})
        expected_dry = [
            dry_run_from(o) for o in every if o["status"].get("outcome") == "DryRun" and target_of(o) == target
        ]
        assert sorted(view.dry_runs_on_target(target), key=repr) == sorted(expected_dry, key=repr)


def _target(kind, name, namespace):
    return {"kind": kind, "name": name, **({"namespace": namespace} if namespace else {})}


def test_a_dry_run_and_a_real_completion_are_the_same_kind_of_link():
    real = _object(1, "team-a", "leak", TARGETS[0], STATUSES[0], 2, 0, False, "restart-pods")
    dry = _object(1, "team-a", "leak", TARGETS[0], STATUSES[1], 2, 0, False, "restart-pods")
    assert link_from(real) == link_from(dry)
    assert link_from(real).kind is LinkKind.COMPLETED


def test_only_requests_that_ran_or_were_skipped_for_the_chain_are_links():
    kinds = {
        repr(status): (
            link.kind
            if (link := link_from(_object(1, "team-a", "leak", TARGETS[0], status, 0, 0, False, "w")))
            else None
        )
        for status in STATUSES
    }
    assert sorted(str(k) for k in kinds.values() if k) == ["Completed", "Completed", "Failed", "Skipped"]


def test_a_target_differing_only_in_the_case_of_its_kind_is_the_same_target():
    lower = _object(1, "team-a", "leak", ("deployment", "web", "team-a"), STATUSES[0], 0, 0, False, "w")
    upper = _object(2, "team-a", "leak", ("Deployment", "web", "team-a"), STATUSES[0], 0, 0, False, "w")
    assert target_of(lower) == target_of(upper) == "team-a/deployment/web"


def test_a_malformed_target_or_count_never_breaks_the_index():
    obj = _object(1, "team-a", "leak", TARGETS[0], STATUSES[0], 0, 0, False, "w")
    obj["spec"]["targetResource"] = {"kind": "Deploy/ment", "name": "web"}
    obj["status"]["ineffectiveCount"] = "three"
    store = Indexer(RR_INDEXERS)
    store.upsert(object_key(obj), obj)  # no exception: such a request is rejected by validation, not by the cache
    assert link_from(obj).ineffective_count == 0
