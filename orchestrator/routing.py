"""Routing (SPEC 4.2 and 4.3): may this RemediationRequest's workflow run now, later, or never?

Pure: a function of the request, a read-only view of the cache, the time and the settings. No awaits, no client.
The checks run in the order of the table `CHECKS` (numbers as in SPEC 4.2) and the first that matches decides:

  1 PreviousExecutionFailed  target       last WFE on the target failed during execution, not acknowledged -> Failed
  2 DuplicateInProgress      fingerprint  an older live RR has the same fingerprint          -> Blocked (event)
  3 IneffectiveChain         fp+target    >= threshold remediations in a row, alert came back -> Failed (manual review)
  4 ConsecutiveFailures      fingerprint  >= threshold failures in a row, last one recent    -> Blocked until
  5 ResourceBusy             target       a live WFE is on the target                        -> Blocked (event)
  6 RecentlyRemediated       target+wf    same workflow completed (or dry-run) recently      -> Blocked until
  7 ExponentialBackoff       fingerprint  the fingerprint's nextAllowedExecution is ahead    -> Blocked until

`route` is the fast path (it stops at the first match); `explain` evaluates every check and reports the facts
behind each answer (for `kubectl kubernaut explain`). Both run the same check functions, so they cannot disagree.

Duplicates come before the breaker on purpose: while one RR of a fingerprint is alive, later ones wait on it and
inherit its outcome instead of each raising its own block and notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from orchestrator.chains import CHAIN_ACKNOWLEDGED_ANNOTATION, IneffectiveChain, Link, ineffective_chain
from shared.backoff import Backoff
from shared.duration import format_duration
from shared.kubetime import format_time
from shared.models import (
    BlockReason,
    ExecutionPhase,
    FailurePhase,
    Outcome,
    RemediationPhase,
    RemediationRequest,
    SkipReason,
)

ACKNOWLEDGED_ANNOTATION = "kubernaut.ai/execution-failure-acknowledged"
UNBLOCK_ANNOTATION = "kubernaut.ai/unblock"
TIME_BASED_REASONS = frozenset(
    {BlockReason.CONSECUTIVE_FAILURES, BlockReason.RECENTLY_REMEDIATED, BlockReason.EXPONENTIAL_BACKOFF}
)


# -- what routing knows about the objects in the cache ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Execution:
    """A WorkflowExecution as routing sees it."""

    namespace: str
    name: str
    created: datetime
    phase: ExecutionPhase | None
    workflow_id: str
    completion_time: datetime | None
    was_execution_failure: bool | None
    acknowledged: bool
    dry_run: bool = False
    """Not a WorkflowExecution: a request that completed as a dry run (SPEC 4.8), named by its own key."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def live(self) -> bool:
        return self.phase is None or not self.phase.terminal


@dataclass(frozen=True, slots=True)
class Request:
    """Another RemediationRequest of the same fingerprint, as routing sees it."""

    namespace: str
    name: str
    created: datetime
    phase: RemediationPhase | None
    completion_time: datetime | None
    failure_phase: FailurePhase | None
    outcome: Outcome | None
    consecutive_failure_count: int
    next_allowed_execution: datetime | None
    start_time: datetime | None = None
    """When it was first routed (status.startTime); None while it never was."""

    @property
    def live(self) -> bool:
        return self.phase is None or not self.phase.terminal

    @property
    def executed(self) -> bool:
        """Its own workflow ran to an end: it counts in (or breaks) the fingerprint's failure chain."""
        return self.outcome is Outcome.REMEDIATED or (
            self.phase is RemediationPhase.FAILED and self.failure_phase is FailurePhase.WORKFLOW_EXECUTION
        )

    @property
    def failed_execution(self) -> bool:
        return self.phase is RemediationPhase.FAILED and self.failure_phase is FailurePhase.WORKFLOW_EXECUTION


class RoutingView(Protocol):
    """A read-only view of the cache, answered through indexes."""

    def executions_on_target(self, target: str) -> Iterable[Execution]:
        """Every WorkflowExecution on the canonical target, in any namespace."""
        ...

    def live_requests(self, namespace: str, fingerprint: str) -> Iterable[Request]:
        """Non-terminal RemediationRequests of the fingerprint in the namespace."""
        ...

    def executed_requests(self, namespace: str, fingerprint: str) -> Iterable[Request]:
        """RemediationRequests of the fingerprint in the namespace whose own workflow ran to an end."""
        ...

    def chain_links(self, namespace: str, fingerprint: str, target: str) -> Iterable[Link]:
        """Requests of the fingerprint on the target that completed (also as dry runs), failed in execution, or
        were skipped for an ineffective chain (SPEC 4.9)."""
        ...

    def chain_acknowledgements(self, namespace: str, fingerprint: str) -> Iterable[datetime]:
        """Creation times of the fingerprint's requests annotated as acknowledging an ineffective chain."""
        ...

    def dry_runs_on_target(self, target: str) -> Iterable[Execution]:
        """Requests on the canonical target, in any namespace, that completed as dry runs (SPEC 4.8)."""
        ...


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    consecutive_failure_threshold: int
    consecutive_failure_cooldown: timedelta
    recently_remediated_cooldown: timedelta
    backoff: Backoff
    ineffective_chain_threshold: int = 3
    """0 turns check 3 off (the count is still computed and stored)."""
    ineffective_window: timedelta = timedelta(minutes=30)


# -- the decision ---------------------------------------------------------------------------------------------
class Verdict(StrEnum):
    EXECUTE = "Execute"
    BLOCK = "Block"
    SKIP = "Skip"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: BlockReason | SkipReason | None = None
    message: str = ""
    until: datetime | None = None
    blocking_workflow_execution: str | None = None
    duplicate_of: str | None = None
    incident: str | None = None
    """What caused a block or skip that deserves one notice: every request hitting it names the same incident."""
    ineffective_count: int | None = field(default=None, compare=False)
    """Not part of what was decided: the request's ineffective-remediation count (SPEC 4.9), when check 3 was
    evaluated on the way to the decision (to be stored on its status)."""

    @classmethod
    def execute(cls) -> Decision:
        return cls(Verdict.EXECUTE)

    @classmethod
    def blocked(
        cls,
        reason: BlockReason,
        message: str,
        *,
        until: datetime | None = None,
        blocking_workflow_execution: str | None = None,
        duplicate_of: str | None = None,
        incident: str | None = None,
    ) -> Decision:
        return cls(Verdict.BLOCK, reason, message, until, blocking_workflow_execution, duplicate_of, incident)

    @classmethod
    def skipped(
        cls, reason: SkipReason, message: str, *, blocking_workflow_execution: str | None = None, incident: str
    ) -> Decision:
        return cls(
            Verdict.SKIP, reason, message, blocking_workflow_execution=blocking_workflow_execution, incident=incident
        )


# -- the checks -------------------------------------------------------------------------------------------
def _newest(items: Iterable[Execution]) -> Execution | None:
    return max(items, key=lambda e: (e.created, e.name), default=None)


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


_NO_TIME = datetime.min.replace(tzinfo=UTC)
_ROUTED, _ROUTING_NOW, _UNROUTED = 0, 1, 2


def _order(request: Request) -> tuple[datetime, int, datetime, str]:
    """SPEC 4.2 check 2, oldest first: creationTimestamp (one-second resolution), then who was routed first
    (status.startTime; routed before unrouted), then the name, which decides only between two unrouted requests."""
    rank = _ROUTED if request.start_time is not None else _UNROUTED
    return (request.created, rank, request.start_time or _NO_TIME, request.name)


@dataclass(frozen=True, slots=True)
class FailureChain:
    """A fingerprint's failure history, read from its newest executed request."""

    count: int = 0
    last_failure: datetime | None = None
    next_allowed_execution: datetime | None = None
    source: str | None = None


def failure_chain(executed: Iterable[Request]) -> FailureChain:
    """The newest executed request decides: a success means no chain; a failure carries the stored count."""
    newest = max(executed, key=lambda r: (r.completion_time or r.created, r.name), default=None)
    if newest is None or not newest.failed_execution:
        return FailureChain()
    return FailureChain(
        count=newest.consecutive_failure_count,
        last_failure=newest.completion_time or newest.created,
        next_allowed_execution=newest.next_allowed_execution,
        source=newest.name,
    )


Facts = dict[str, str | int | bool | None]
"""What a check looked at, JSON-ready (times in RFC 3339). Filled only when someone asks (`explain`)."""


class _Inputs:
    """What the checks read, each lookup done once and only when a check first needs it."""

    __slots__ = (
        "_chain",
        "_executions",
        "_ineffective",
        "fingerprint",
        "name",
        "namespace",
        "now",
        "rr",
        "settings",
        "target",
        "view",
    )

    def __init__(self, rr: RemediationRequest, view: RoutingView, now: datetime, settings: RoutingSettings) -> None:
        self.rr = rr
        self.view = view
        self.now = now
        self.settings = settings
        self.namespace = rr.metadata.namespace or ""
        self.name = rr.metadata.name or ""
        self.target = rr.spec.target_resource.canonical
        self.fingerprint = rr.spec.signal_fingerprint
        self._executions: list[Execution] | None = None
        self._chain: FailureChain | None = None
        self._ineffective: IneffectiveChain | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def executions(self) -> list[Execution]:
        """Every WorkflowExecution on the target."""
        if self._executions is None:
            self._executions = list(self.view.executions_on_target(self.target))
        return self._executions

    @property
    def chain(self) -> FailureChain:
        if self._chain is None:
            self._chain = failure_chain(self.view.executed_requests(self.namespace, self.fingerprint))
        return self._chain

    @property
    def ineffective(self) -> IneffectiveChain:
        if self._ineffective is None:
            links = (
                link
                for link in self.view.chain_links(self.namespace, self.fingerprint, self.target)
                if link.name != self.name
            )
            acknowledged = self.view.chain_acknowledgements(self.namespace, self.fingerprint)
            created = self.rr.metadata.creation_timestamp or self.now
            self._ineffective = ineffective_chain(created, links, acknowledged, self.settings.ineffective_window)
        return self._ineffective

    def annotated(self, decision: Decision) -> Decision:
        """The decision with the request's ineffective count, when check 3 was evaluated for it."""
        if self._ineffective is None:
            return decision
        return replace(decision, ineffective_count=self._ineffective.count)


def unacknowledged_failure(executions: Iterable[Execution]) -> Execution | None:
    """Check 1's condition on a target: its newest execution, when that failed during execution and nobody has
    acknowledged it (a human must look at the target first). `kubectl kubernaut status` lists these."""
    last = _newest(executions)
    if last is None or last.phase is not ExecutionPhase.FAILED or not last.was_execution_failure or last.acknowledged:
        return None
    return last


def _previous_execution_failed(i: _Inputs, facts: Facts | None) -> Decision | None:
    """1: the target may have been left half-changed; a human must look first."""
    last = _newest(i.executions)
    if facts is not None:
        facts.update(
            target=i.target,
            lastWorkflowExecution=last.key if last else None,
            lastWorkflowExecutionPhase=str(last.phase) if last and last.phase else None,
            lastWorkflowExecutionCompleted=_time(last.completion_time) if last else None,
            wasExecutionFailure=last.was_execution_failure if last else None,
            acknowledged=last.acknowledged if last else None,
        )
    if last is None or unacknowledged_failure([last]) is None:
        return None
    return Decision.skipped(
        SkipReason.PREVIOUS_EXECUTION_FAILED,
        f"the last workflow on {i.target} ({last.key}) failed during execution; acknowledge it with the "
        f"{ACKNOWLEDGED_ANNOTATION} annotation or delete it once the target has been checked",
        blocking_workflow_execution=last.key,
        incident=last.key,
    )


def _duplicate_in_progress(i: _Inputs, facts: Facts | None) -> Decision | None:
    """2: the oldest live request of the fingerprint goes first; the others inherit from it."""
    # Routed before: its startTime places it. Routed for the first time now: after every request already routed and
    # before every one not yet routed (its startTime is written with this decision, so the order never flips).
    started = i.rr.status.start_time if i.rr.status else None
    created = i.rr.metadata.creation_timestamp or i.now
    me = (created, _ROUTED, started, i.name) if started else (created, _ROUTING_NOW, _NO_TIME, i.name)
    live = [r for r in i.view.live_requests(i.namespace, i.fingerprint) if r.name != i.name]
    older = [r for r in live if _order(r) < me]
    original = min(older, key=_order, default=None)
    if facts is not None:
        facts.update(
            fingerprint=i.fingerprint,
            created=_time(i.rr.metadata.creation_timestamp),
            startTime=_time(started),
            liveRequests=len(live),
            olderLiveRequests=len(older),
            duplicateOf=original.name if original else None,
            duplicateOfCreated=_time(original.created) if original else None,
            duplicateOfStartTime=_time(original.start_time) if original else None,
        )
    if original is None:
        return None
    return Decision.blocked(
        BlockReason.DUPLICATE_IN_PROGRESS,
        # No phase of the original here: it goes stale, and re-routing would rewrite the status for it.
        f"duplicate of {original.name}, an older request of the same signal; this request inherits its outcome",
        duplicate_of=original.name,
    )


def _ineffective_chain(i: _Inputs, facts: Facts | None) -> Decision | None:
    """3: remediations that keep succeeding while the alert keeps coming back are not fixing anything."""
    chain, threshold = i.ineffective, i.settings.ineffective_chain_threshold
    last = chain.last_completion
    if facts is not None:
        facts.update(
            fingerprint=i.fingerprint,
            target=i.target,
            ineffectiveCount=chain.count,
            threshold=threshold,
            window=format_duration(i.settings.ineffective_window),
            newestLink=chain.newest.name if chain.newest else None,
            newestLinkKind=str(chain.newest.kind) if chain.newest else None,
            lastCompletion=last.name if last else None,
            lastCompletionTime=_time(last.time) if last else None,
            acknowledgedUpTo=_time(chain.acknowledged_at),
        )
    if threshold <= 0 or chain.count < threshold:
        return None
    named = last or chain.newest
    source = f"last completed by {named.name} at {format_time(named.time)}" if named else "no completion left"
    return Decision.skipped(
        SkipReason.INEFFECTIVE_CHAIN,
        f"{chain.count} remediations of this signal on {i.target} in a row were followed by the signal again within "
        f"{format_duration(i.settings.ineffective_window)} ({source}); the workflow is not fixing "
        f"the cause. Acknowledge with the {CHAIN_ACKNOWLEDGED_ANNOTATION} annotation on this request once someone "
        f"has looked",
        incident=f"{i.namespace}/{i.fingerprint}@{named.name if named else i.target}",
    )


def _consecutive_failures(i: _Inputs, facts: Facts | None) -> Decision | None:
    """4: a circuit breaker per fingerprint."""
    chain, settings = i.chain, i.settings
    until = chain.last_failure + settings.consecutive_failure_cooldown if chain.last_failure else None
    if facts is not None:
        facts.update(
            fingerprint=i.fingerprint,
            consecutiveFailureCount=chain.count,
            threshold=settings.consecutive_failure_threshold,
            lastFailedRequest=chain.source,
            lastFailure=_time(chain.last_failure),
            cooldownEnds=_time(until),
        )
    if until is None or chain.count < settings.consecutive_failure_threshold or i.now >= until:
        return None
    return Decision.blocked(
        BlockReason.CONSECUTIVE_FAILURES,
        f"{chain.count} consecutive failures of this signal (last in {chain.source}); cooldown until "
        f"{format_time(until)}",
        until=until,
        incident=f"{i.fingerprint}@{format_time(chain.last_failure or until)}",
    )


def _resource_busy(i: _Inputs, facts: Facts | None) -> Decision | None:
    """5: never two executions on one target."""
    live = [e for e in i.executions if e.live]
    busy = _newest(live)
    if facts is not None:
        facts.update(
            target=i.target,
            liveWorkflowExecutions=len(live),
            blockingWorkflowExecution=busy.key if busy else None,
            blockingWorkflowExecutionPhase=str(busy.phase) if busy and busy.phase else None,
        )
    if busy is None:
        return None
    return Decision.blocked(
        BlockReason.RESOURCE_BUSY,
        f"another workflow ({busy.key}) is running on {i.target}",
        blocking_workflow_execution=busy.key,
    )


def _recently_remediated(i: _Inputs, facts: Facts | None) -> Decision | None:
    """6: let the last fix settle before running the same workflow again."""
    workflow_id = i.rr.spec.workflow_ref.workflow_id
    completed = [
        e
        for e in (*i.executions, *(d for d in i.view.dry_runs_on_target(i.target) if d.key != i.key))
        if e.phase is ExecutionPhase.COMPLETED and e.workflow_id == workflow_id and e.completion_time is not None
    ]
    latest = max(completed, key=lambda e: (e.completion_time or e.created, e.name), default=None)
    finished = latest.completion_time if latest else None
    until = finished + i.settings.recently_remediated_cooldown if finished else None
    if facts is not None:
        facts.update(
            target=i.target,
            workflowId=workflow_id,
            lastCompletion=latest.key if latest else None,
            lastCompletionDryRun=latest.dry_run if latest else None,
            lastCompletionTime=_time(finished),
            cooldownEnds=_time(until),
        )
    if latest is None or finished is None or until is None or i.now >= until:
        return None
    what = f"a dry run of {workflow_id}" if latest.dry_run else workflow_id
    return Decision.blocked(
        BlockReason.RECENTLY_REMEDIATED,
        f"{what} completed on {i.target} at {format_time(finished)} ({latest.key}); cooldown until "
        f"{format_time(until)}",
        until=until,
        blocking_workflow_execution=None if latest.dry_run else latest.key,
    )


def _exponential_backoff(i: _Inputs, facts: Facts | None) -> Decision | None:
    """7: the fingerprint failed recently; wait before trying again."""
    chain = i.chain
    if facts is not None:
        facts.update(
            fingerprint=i.fingerprint,
            consecutiveFailureCount=chain.count,
            lastFailedRequest=chain.source,
            nextAllowedExecution=_time(chain.next_allowed_execution),
        )
    if chain.next_allowed_execution is None or i.now >= chain.next_allowed_execution:
        return None
    return Decision.blocked(
        BlockReason.EXPONENTIAL_BACKOFF,
        f"{chain.count} recent failure(s) of this signal (last in {chain.source}); next attempt at "
        f"{format_time(chain.next_allowed_execution)}",
        until=chain.next_allowed_execution,
    )


def first_start_time(namespace: str, fingerprint: str, view: RoutingView, now: datetime) -> datetime:
    """The startTime of a request routed for the first time: now, or just after the newest startTime among the
    fingerprint's live requests when that is not earlier (two decisions in one clock tick, a new leader whose clock
    is a little behind). So check 2's order by startTime is strict and agrees with the order of the decisions."""
    newest = max((r.start_time for r in view.live_requests(namespace, fingerprint) if r.start_time), default=None)
    return now if newest is None or newest < now else newest + timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Check:
    """One row of SPEC 4.2. `evaluate` answers the decision when the check matches, else None, and fills `facts`
    when given a dict (explain) - one implementation for both the fast path and the explanation."""

    name: str
    evaluate: Callable[[_Inputs, Facts | None], Decision | None]
    time_based: bool = False
    """Skipped by a manual unblock (`kubernaut.ai/unblock`); the safety checks never are."""


# The routing table, in SPEC 4.2 order: the first check that matches decides. A new check is one row here.
CHECKS: tuple[Check, ...] = (
    Check(SkipReason.PREVIOUS_EXECUTION_FAILED.value, _previous_execution_failed),
    Check(BlockReason.DUPLICATE_IN_PROGRESS.value, _duplicate_in_progress),
    Check(SkipReason.INEFFECTIVE_CHAIN.value, _ineffective_chain),
    Check(BlockReason.CONSECUTIVE_FAILURES.value, _consecutive_failures, time_based=True),
    Check(BlockReason.RESOURCE_BUSY.value, _resource_busy),
    Check(BlockReason.RECENTLY_REMEDIATED.value, _recently_remediated, time_based=True),
    Check(BlockReason.EXPONENTIAL_BACKOFF.value, _exponential_backoff, time_based=True),
)


def route(
    rr: RemediationRequest,
    view: RoutingView,
    now: datetime,
    settings: RoutingSettings,
    *,
    bypass_time_blocks: bool = False,
) -> Decision:
    """Decide for `rr`: the first check of the table that matches decides, later ones are not evaluated. With
    `bypass_time_blocks` (manual unblock) the time-based checks are skipped; the safety checks (manual review,
    duplicates, one execution per target) never are."""
    inputs = _Inputs(rr, view, now, settings)
    for check in CHECKS:
        if bypass_time_blocks and check.time_based:
            continue
        decision = check.evaluate(inputs, None)
        if decision is not None:
            return inputs.annotated(decision)
    return inputs.annotated(Decision.execute())


def ineffective_count(rr: RemediationRequest, view: RoutingView, now: datetime, settings: RoutingSettings) -> int:
    """SPEC 4.9: the request's ineffective-remediation count as check 3 reads it, for a request that needs no
    decision (its execution exists already: a status write lost after the create, a crash in between)."""
    return _Inputs(rr, view, now, settings).ineffective.count


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of the table, evaluated, with the facts behind its answer (match or not)."""

    check: str
    """The SPEC 4.2 name, e.g. "PreviousExecutionFailed"."""
    matched: bool
    """Whether the check's condition holds now. A bypassed check may match and still not decide."""
    facts: Mapping[str, str | int | bool | None]
    decision: Decision | None
    """What the check decides (or, bypassed, would decide) when matched, else None."""
    bypassed: bool = False
    """A time-based check skipped by manual unblock: it took no part in the decision."""


@dataclass(frozen=True, slots=True)
class Explanation:
    checks: tuple[CheckResult, ...]
    """Every check of the table, in table order, each evaluated."""
    decision: Decision
    """Always what `route` decides for the same inputs."""


def explain(
    rr: RemediationRequest,
    view: RoutingView,
    now: datetime,
    settings: RoutingSettings,
    *,
    bypass_time_blocks: bool = False,
) -> Explanation:
    """Every check of the table evaluated for `rr`, with its facts, and the decision `route` takes."""
    inputs = _Inputs(rr, view, now, settings)
    results = []
    decision: Decision | None = None
    chain_evaluated = False  # as `route` would have: check 3 ran before the deciding check (or none decided)
    for check in CHECKS:
        facts: Facts = {}
        found = check.evaluate(inputs, facts)
        bypassed = bypass_time_blocks and check.time_based
        results.append(CheckResult(check.name, found is not None, facts, found, bypassed))
        if decision is None and check.name == SkipReason.INEFFECTIVE_CHAIN:
            chain_evaluated = True
        if decision is None and not bypassed:
            decision = found
    decision = decision or Decision.execute()
    if chain_evaluated:
        decision = inputs.annotated(decision)
    return Explanation(tuple(results), decision)


def record_failure(
    failed: str, failure_time: datetime, executed: Iterable[Request], fingerprint: str, settings: RoutingSettings
) -> tuple[int, datetime | None]:
    """SPEC 4.3: the consecutive failure count of the fingerprint including request `failed`, and, while below the
    threshold, when the next request of the fingerprint may execute. Walks the executed requests newest first: each
    failure counts, a success ends the walk; requests that never executed are not in `executed` at all."""
    count = 1
    history = sorted(
        (r for r in executed if r.name != failed and (r.completion_time or r.created) <= failure_time),
        key=lambda r: (r.completion_time or r.created, r.name),
        reverse=True,
    )
    for request in history:
        if not request.failed_execution:
            break
        count += 1
    if count >= settings.consecutive_failure_threshold:
        return count, None
    return count, failure_time + settings.backoff.duration(count, seed=fingerprint)
