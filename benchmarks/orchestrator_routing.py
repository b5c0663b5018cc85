"""Routing decision time with 50 000 RRs and 20 000 WFEs cached: through the indexes, against a linear scan.

The caches are the informer's own stores (`Indexer` with RR_INDEXERS / WFE_INDEXERS), filled as a watch would fill
them: each object arrives as created, then with its final status. Each fingerprint gets a history ("story"): settled
successes, a recent success, a running execution with blocked duplicates, failures in backoff, a tripped breaker,
a failure during execution awaiting review (some acknowledged), an ineffective chain (remediations each followed
by the alert again within the window, some tripped and some of those acknowledged), a recent dry run, or requests
that never ran. Fingerprints share
targets (a few hot targets, and cluster-scoped nodes remediated from several namespaces), so busy targets and
skips also come from other fingerprints.

Then `route()` decides for new requests of sampled fingerprints, through `CacheView` and through `ScanView`, which
answers the same RoutingView protocol by listing the whole store and filtering. Both must decide the same; a
disagreement is a bug and fails the benchmark. The scan takes seconds a decision, so it is timed on a subsample
that covers every verdict. Targets: index p99 < 1 ms, and >= 100x faster than the scan.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.objects import NAMESPACES
from orchestrator.chains import CHAIN_ACKNOWLEDGED_ANNOTATION, Link
from orchestrator.routing import ACKNOWLEDGED_ANNOTATION, Decision, Execution, Request, RoutingSettings, route
from orchestrator.view import (
    RR_INDEXERS,
    WFE_INDEXERS,
    WFE_TARGET,
    CacheView,
    dry_run_from,
    execution_from,
    link_from,
    request_from,
    target_of,
)
from shared.backoff import Backoff
from shared.kubetime import format_time, parse_time
from shared.models import BlockReason, RemediationRequest
from shared.runtime.store import Indexer, ReadOnlyStore, object_key, section
from shared.target import canonical_target
from tests import factories

REQUESTS = 50_000
EXECUTIONS = 20_000
DECISIONS = 2_000
SCANNED = 42  # decisions also timed through the scan: 6 of each verdict
LONG_HISTORY = 1_000  # finished executions kept on one target (issue 14 item 4)
LONG_HISTORY_DECISIONS = 500
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
SETTINGS = RoutingSettings(
    consecutive_failure_threshold=3,
    consecutive_failure_cooldown=timedelta(hours=1),
    recently_remediated_cooldown=timedelta(minutes=5),
    backoff=Backoff(timedelta(seconds=60), timedelta(seconds=600)),
)
WORKFLOWS = ("restart-pods", "scale-up", "rollback", "clear-disk")
STORIES = {  # story: weight
    "settled": 30,
    "recent-success": 10,
    "executing": 15,
    "backoff": 12,
    "breaker": 10,
    "review": 8,
    "never-ran": 15,
    "ineffective": 10,
    "dry-run": 5,
}


class ScanView:
    """RoutingView by brute force: every call lists (decodes) the whole store and filters it."""

    def __init__(self, requests: ReadOnlyStore, executions: ReadOnlyStore) -> None:
        self._requests = requests
        self._executions = executions

    def executions_on_target(self, target: str) -> list[Execution]:
        every = self._executions.list()
        return [execution_from(o) for o in every if section(o, "spec").get("targetResource") == target]

    def _requests_of(self, namespace: str, fingerprint: str) -> Iterator[Request]:
        for obj in self._requests.list():
            if obj["metadata"]["namespace"] == namespace and obj["spec"]["signalFingerprint"] == fingerprint:
                yield request_from(obj)

    def live_requests(self, namespace: str, fingerprint: str) -> list[Request]:
        return [r for r in self._requests_of(namespace, fingerprint) if r.live]

    def executed_requests(self, namespace: str, fingerprint: str) -> list[Request]:
        return [r for r in self._requests_of(namespace, fingerprint) if r.executed]

    def chain_links(self, namespace: str, fingerprint: str, target: str) -> list[Link]:
        links = []
        for obj in self._requests.list():
            meta, spec = obj["metadata"], obj["spec"]
            if meta["namespace"] == namespace and spec["signalFingerprint"] == fingerprint and target_of(obj) == target:
                link = link_from(obj)
                if link is not None:
                    links.append(link)
        return links

    def chain_acknowledgements(self, namespace: str, fingerprint: str) -> list[datetime]:
        return [
            parse_time(obj["metadata"]["creationTimestamp"])
            for obj in self._requests.list()
            if obj["metadata"]["namespace"] == namespace
            and obj["spec"]["signalFingerprint"] == fingerprint
            and (obj["metadata"].get("annotations") or {}).get(CHAIN_ACKNOWLEDGED_ANNOTATION)
        ]

    def dry_runs_on_target(self, target: str) -> list[Execution]:
        return [
            dry_run_from(obj)
            for obj in self._requests.list()
            if section(obj, "status").get("outcome") == "DryRun" and target_of(obj) == target
        ]


# -- the cache ------------------------------------------------------------------------------------------------
def _ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


@dataclass
class Fingerprint:
    namespace: str
    seed: str
    target: tuple[str, str, str | None]
    workflow: str


@dataclass
class Cache:
    requests: Indexer = field(default_factory=lambda: Indexer(RR_INDEXERS))
    executions: Indexer = field(default_factory=lambda: Indexer(WFE_INDEXERS))
    fingerprints: list[Fingerprint] = field(default_factory=list)
    busy: set[tuple[str, str, str | None]] = field(default_factory=set)
    serial: int = 0

    def add(
        self,
        fp: Fingerprint,
        age: float,
        status: dict[str, Any],
        wfe: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> str:
        """One request of `fp` created `age` seconds ago, with `status`; with `wfe` (its execution's status)."""
        self.serial += 1
        name = f"rr-{self.serial:06d}"
        obj = factories.remediation_request(
            name, fp.namespace, target=fp.target, workflow_id=fp.workflow, fingerprint_seed=fp.seed
        )
        meta = obj["metadata"]
        meta.update(uid=f"uid-{self.serial}", resourceVersion=str(self.serial), creationTimestamp=_ago(age))
        if annotations:
            meta["annotations"] = annotations
        self.requests.upsert(object_key(obj), obj)  # as created, then as it is now: indexes are refiled
        if wfe is not None:
            self._execution(fp, name, meta["uid"], age - 1, wfe)
            status = {"workflowExecutionRef": {"kind": "WorkflowExecution", "name": name}, **status}
        self.requests.upsert(object_key(obj), {**obj, "status": {"startTime": _ago(age - 1), **status}})
        return name

    def _execution(self, fp: Fingerprint, rr: str, uid: str, age: float, status: dict[str, Any]) -> None:
        kind, name, namespace = fp.target
        obj = factories.workflow_execution(
            rr, fp.namespace, rr_name=rr, target=canonical_target(kind, name, namespace), workflow_id=fp.workflow
        )
        meta = obj["metadata"]
        meta.update(creationTimestamp=_ago(age), resourceVersion=str(self.serial))
        meta["ownerReferences"] = [{"kind": "RemediationRequest", "name": rr, "uid": uid, "controller": True}]
        self.executions.upsert(object_key(obj), obj)
        self.executions.upsert(object_key(obj), {**obj, "status": status})


def _succeeded(cache: Cache, fp: Fingerprint, done: float, ineffective: int = 0) -> None:
    status: dict[str, Any] = {"phase": "Completed", "outcome": "Remediated", "completionTime": _ago(done)}
    if ineffective:
        status["ineffectiveCount"] = ineffective
    cache.add(
        fp, done + 120, status, {"phase": "Completed", "startTime": _ago(done + 110), "completionTime": _ago(done)}
    )


def _failed(cache: Cache, fp: Fingerprint, done: float, count: int, *, during: bool = False) -> None:
    """An executed request whose workflow failed (during execution, or before anything ran)."""
    failed_at = NOW - timedelta(seconds=done)
    status: dict[str, Any] = {
        "phase": "Failed",
        "failurePhase": "WorkflowExecution",
        "failureReason": "TaskFailed" if during else "ImagePullBackOff",
        "completionTime": _ago(done),
        "consecutiveFailureCount": count,
    }
    if count < SETTINGS.consecutive_failure_threshold:
        status["nextAllowedExecution"] = format_time(failed_at + SETTINGS.backoff.duration(count, seed=fp.seed))
    details = {"reason": status["failureReason"], "message": "failed", "wasExecutionFailure": during}
    cache.add(fp, done + 60, status, {"phase": "Failed", "completionTime": _ago(done), "failureDetails": details})


def _inherited(cache: Cache, fp: Fingerprint, age: float, *, completed: bool = True) -> None:
    if completed:
        cache.add(fp, age, {"phase": "Completed", "outcome": "InheritedCompleted", "completionTime": _ago(age - 60)})
    else:
        cache.add(fp, age, {"phase": "Failed", "failurePhase": "Deduplicated", "outcome": "InheritedFailed"})


def _story(cache: Cache, fp: Fingerprint, story: str, rng: random.Random) -> None:
    hours = 3600 * rng.uniform(2, 72)
    if story in ("settled", "recent-success"):
        for n in range(rng.randint(1, 3)):
            _succeeded(cache, fp, hours + n * 7200)
            _inherited(cache, fp, hours + n * 7200 + 30)
        if story == "recent-success":
            _succeeded(cache, fp, rng.uniform(20, 280))
    elif story == "executing":
        if rng.random() < 0.5:
            _succeeded(cache, fp, hours)
        running = cache.add(
            fp, 300, {"phase": "Executing"}, {"phase": rng.choice(["Running", "Pending"]), "startTime": _ago(290)}
        )
        cache.busy.add(fp.target)
        for n in range(rng.randint(1, 3)):
            blocked = {"phase": "Blocked", "blockReason": "DuplicateInProgress", "duplicateOf": running}
            cache.add(fp, 200 - n * 30, blocked)
    elif story == "backoff":
        last = rng.uniform(10, 400)
        count = rng.randint(1, 2)
        for n in range(count):
            _failed(cache, fp, last + (count - 1 - n) * 900, n + 1)
        _inherited(cache, fp, last + 30, completed=False)
    elif story == "breaker":
        last = rng.uniform(60, 3000)
        for n in range(3):
            _failed(cache, fp, last + (2 - n) * 600, n + 1)
        if rng.random() < 0.5:
            until = format_time(NOW - timedelta(seconds=last) + SETTINGS.consecutive_failure_cooldown)
            cache.add(fp, last - 10, {"phase": "Blocked", "blockReason": "ConsecutiveFailures", "blockedUntil": until})
        else:
            _inherited(cache, fp, last + 30, completed=False)
    elif story == "review":
        _failed(cache, fp, hours, 1, during=True)
        acknowledged = rng.random() < 0.3
        if acknowledged:
            wfe_key = f"{fp.namespace}/rr-{cache.serial:06d}"
            obj = cache.executions.get(wfe_key)
            assert obj is not None
            obj["metadata"]["annotations"] = {ACKNOWLEDGED_ANNOTATION: "alice: checked the target"}
            cache.executions.upsert(wfe_key, obj)
        for n in range(rng.randint(1, 3)):
            skipped = {"phase": "Failed", "failurePhase": "Routing", "skipReason": "PreviousExecutionFailed"}
            cache.add(fp, hours - 600 * (n + 1), {**skipped, "outcome": "ManualReviewRequired"})
    elif story == "ineffective":
        # Remediations each followed by the alert within the window (30 min): counts 0, 1, 2, ... stored on each.
        links = rng.randint(1, 4)
        last = rng.uniform(60, 1500)
        for n in range(links):
            _succeeded(cache, fp, last + (links - 1 - n) * 1200, ineffective=n)
        if links >= SETTINGS.ineffective_chain_threshold:
            tripped: dict[str, Any] = {
                "phase": "Failed",
                "failurePhase": "Routing",
                "skipReason": "IneffectiveChain",
                "outcome": "ManualReviewRequired",
                "ineffectiveCount": links,
                "completionTime": _ago(last - 30),
            }
            chain_ack = {CHAIN_ACKNOWLEDGED_ANNOTATION: "alice: leak fixed"} if rng.random() < 0.3 else None
            cache.add(fp, last - 30, tripped, annotations=chain_ack)
    elif story == "dry-run":
        done = rng.uniform(20, 280) if rng.random() < 0.7 else hours
        dry: dict[str, Any] = {"phase": "Completed", "outcome": "DryRun", "completionTime": _ago(done)}
        cache.add(fp, done, dry, annotations={"kubernaut.ai/dry-run": "true"})
    else:  # never-ran: rejected for an invalid spec
        for n in range(min(rng.randint(1, 2), REQUESTS - len(cache.requests))):
            rejected = {"phase": "Failed", "failurePhase": "Routing", "failureReason": "InvalidSpec"}
            cache.add(fp, hours + n * 60, rejected)


def _target(cache: Cache, namespace: str, rng: random.Random, *, free: bool) -> tuple[str, str, str | None]:
    roll = rng.random()
    if roll < 0.05:
        target: tuple[str, str, str | None] = ("Node", f"node-{rng.randrange(100)}", None)
    elif roll < 0.07:
        target = ("Deployment", f"hot-{rng.randrange(20)}", "team-0")
    elif roll < 0.30 and cache.fingerprints:
        target = rng.choice(cache.fingerprints).target
    else:
        target = ("Deployment", f"app-{cache.serial}-{rng.randrange(1000)}", namespace)
    if free and target in cache.busy:
        return ("Deployment", f"app-{cache.serial}", namespace)
    return target


def fill(rng: random.Random) -> Cache:
    """50 000 requests and about 20 000 executions, as described in the module's docstring."""
    cache = Cache()
    stories, weights = list(STORIES), list(STORIES.values())
    while len(cache.requests) < REQUESTS:
        story = rng.choices(stories, weights)[0] if len(cache.executions) < EXECUTIONS else "never-ran"
        namespace = f"team-{rng.randrange(NAMESPACES)}"
        target = _target(cache, namespace, rng, free=story == "executing")
        fp = Fingerprint(namespace, f"fp-{len(cache.fingerprints)}", target, rng.choice(WORKFLOWS))
        cache.fingerprints.append(fp)
        _story(cache, fp, story, rng)
    return cache


# -- the decisions --------------------------------------------------------------------------------------------
def _new_request(cache: Cache, fp: Fingerprint, index: int) -> RemediationRequest:
    obj = factories.remediation_request(
        f"new-{index:05d}", fp.namespace, target=fp.target, workflow_id=fp.workflow, fingerprint_seed=fp.seed
    )
    obj["metadata"].update(uid=f"new-{index}", creationTimestamp=format_time(NOW))
    return RemediationRequest.from_k8s(obj)


def _label(decision: Decision) -> str:
    return f"{decision.verdict}/{decision.reason}" if decision.reason else str(decision.verdict)


def _timed(rr: RemediationRequest, view: Any) -> tuple[Decision, float]:
    started = time.perf_counter()
    decision = route(rr, view, NOW, SETTINGS)
    return decision, time.perf_counter() - started


def _summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 4),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 4),
        "max_ms": round(ordered[-1] * 1000, 4),
    }


def long_history(rng: random.Random) -> dict[str, Any]:
    """One target with LONG_HISTORY finished executions (successes and failures before execution, all older than
    every cooldown), then new requests of new signals on it: routing reads every execution on the target."""
    cache = Cache()
    target: tuple[str, str, str | None] = ("Deployment", "long-lived", "team-0")
    for n in range(LONG_HISTORY):
        fp = Fingerprint("team-0", f"history-{n}", target, rng.choice(WORKFLOWS))
        cache.fingerprints.append(fp)
        if n % 10 == 9:
            _failed(cache, fp, 3 * 86400 + n * 60, 1)
        else:
            _succeeded(cache, fp, 3 * 86400 + n * 60)
    assert len(cache.executions.index_keys(WFE_TARGET, canonical_target(*target))) == LONG_HISTORY
    view = CacheView(cache.requests, cache.executions)
    seconds: list[float] = []
    verdicts: Counter[str] = Counter()
    for index in range(LONG_HISTORY_DECISIONS):
        fp = Fingerprint("team-0", f"new-{index}", target, rng.choice(WORKFLOWS))
        decision, elapsed = _timed(_new_request(cache, fp, index), view)
        verdicts[_label(decision)] += 1
        seconds.append(elapsed)
    summary = _summary(seconds)
    return {
        "executions_on_target": LONG_HISTORY,
        "decisions": LONG_HISTORY_DECISIONS,
        "verdicts": dict(verdicts),
        **summary,
        "target_p99_under_1ms": summary["p99_ms"] < 1,
    }


async def run(seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    started = time.perf_counter()
    cache = fill(rng)
    fill_seconds = time.perf_counter() - started
    indexed, scan = CacheView(cache.requests, cache.executions), ScanView(cache.requests, cache.executions)

    # New requests of existing fingerprints, and of new signals on existing targets (one in ten).
    samples: list[RemediationRequest] = []
    for index in range(DECISIONS):
        fp = rng.choice(cache.fingerprints)
        if index % 10 == 0:
            fp = Fingerprint(fp.namespace, f"new-signal-{index}", fp.target, rng.choice(WORKFLOWS))
        samples.append(_new_request(cache, fp, index))

    decisions: list[Decision] = []
    index_seconds: list[float] = []
    for rr in samples:
        decision, seconds = _timed(rr, indexed)
        decisions.append(decision)
        index_seconds.append(seconds)
    verdicts = Counter(_label(d) for d in decisions)
    # Cost grows with the target's execution history: every execution on it is decoded and projected.
    by_history: dict[str, list[float]] = {}
    for rr, seconds in zip(samples, index_seconds, strict=True):
        history = len(cache.executions.index_keys(WFE_TARGET, rr.spec.target_resource.canonical))
        by_history.setdefault(f"{min(history // 10 * 10, 40)}+", []).append(seconds)
    expected = {"Execute", "Skip/PreviousExecutionFailed", "Skip/IneffectiveChain"} | {
        f"Block/{reason}" for reason in BlockReason
    }
    missing = expected - set(verdicts)
    if missing:
        raise AssertionError(f"the sample does not cover every verdict: missing {sorted(missing)}")

    # The scan on a subsample stratified by verdict, so rare verdicts are compared too.
    by_label: dict[str, list[int]] = {}
    for position, decision in enumerate(decisions):
        by_label.setdefault(_label(decision), []).append(position)
    per_label = SCANNED // len(by_label)
    subsample = sorted(p for positions in by_label.values() for p in positions[:per_label])
    scan_seconds, sub_index_seconds = [], []
    for position in subsample:
        decision, seconds = _timed(samples[position], scan)
        if decision != decisions[position] or decision.ineffective_count != decisions[position].ineffective_count:
            raise AssertionError(
                f"index and scan disagree for {samples[position].key}: {decisions[position]} != {decision}"
            )
        scan_seconds.append(seconds)
        sub_index_seconds.append(index_seconds[position])

    through_index = _summary(index_seconds)
    scanned = _summary(scan_seconds)
    speedup = statistics.median(scan_seconds) / statistics.median(sub_index_seconds)
    return {
        "cache": {
            "requests": len(cache.requests),
            "executions": len(cache.executions),
            "fingerprints": len(cache.fingerprints),
            "targets": len({fp.target for fp in cache.fingerprints}),
            "namespaces": NAMESPACES,
            "fill_seconds": round(fill_seconds, 2),
        },
        "decisions": len(decisions),
        "verdicts": dict(sorted(verdicts.items())),
        "index": through_index,
        "index_p50_ms_by_executions_on_target": {
            band: {"decisions": len(values), "p50_ms": round(statistics.median(values) * 1000, 4)}
            for band, values in sorted(by_history.items(), key=lambda item: int(item[0][:-1]))
        },
        "scan": {"decisions": len(subsample), **scanned, "identical_decisions": True},
        "speedup_median": round(speedup),
        "long_history_on_one_target": long_history(random.Random(seed)),
        "targets": {"index_p99_under_1ms": through_index["p99_ms"] < 1, "at_least_100x_faster": speedup >= 100},
    }
