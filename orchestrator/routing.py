"""Routing (SPEC 4.2 and 4.3): may this RemediationRequest's workflow run now, later, or never?

Pure: a function of the request, a read-only view of the cache, the time and the settings. No awaits, no client.
The checks run in the table's order and the first that matches decides:

  1 PreviousExecutionFailed  target       last WFE on the target failed during execution, not acknowledged -> Failed
  2 DuplicateInProgress      fingerprint  an older live RR has the same fingerprint          -> Blocked (event)
  3 ConsecutiveFailures      fingerprint  >= threshold failures in a row, last one recent    -> Blocked until
  4 ResourceBusy             target       a live WFE is on the target                        -> Blocked (event)
  5 RecentlyRemediated       target+wf    same workflow completed on the target recently     -> Blocked until
  6 ExponentialBackoff       fingerprint  the fingerprint's nextAllowedExecution is ahead    -> Blocked until

Duplicates come before the breaker on purpose: while one RR of a fingerprint is alive, later ones wait on it and
inherit its outcome instead of each raising its own block and notice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from shared.backoff import Backoff
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


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    consecutive_failure_threshold: int
    consecutive_failure_cooldown: timedelta
    recently_remediated_cooldown: timedelta
    backoff: Backoff


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
    def skipped(cls, reason: SkipReason, message: str, *, blocking_workflow_execution: str, incident: str) -> Decision:
        return cls(
            Verdict.SKIP, reason, message, blocking_workflow_execution=blocking_workflow_execution, incident=incident
        )


# -- the checks -------------------------------------------------------------------------------------------
def _newest(items: Iterable[Execution]) -> Execution | None:
    return max(items, key=lambda e: (e.created, e.name), default=None)


def _order(request: Request) -> tuple[datetime, str]:
    return (request.created, request.name)


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


def route(
    rr: RemediationRequest,
    view: RoutingView,
    now: datetime,
    settings: RoutingSettings,
    *,
    bypass_time_blocks: bool = False,
) -> Decision:
    """Decide for `rr`. With `bypass_time_blocks` (manual unblock) the cooldown and backoff checks (3, 5, 6) are
    skipped; the safety checks (manual review, duplicates, one execution per target) never are."""
    namespace = rr.metadata.namespace or ""
    name = rr.metadata.name or ""
    target = rr.spec.target_resource.canonical
    fingerprint = rr.spec.signal_fingerprint
    executions = list(view.executions_on_target(target))

    # 1 PreviousExecutionFailed: the target may have been left half-changed; a human must look first.
    last = _newest(executions)
    if (
        last is not None
        and last.phase is ExecutionPhase.FAILED
        and last.was_execution_failure
        and not last.acknowledged
    ):
        return Decision.skipped(
            SkipReason.PREVIOUS_EXECUTION_FAILED,
            f"the last workflow on {target} ({last.key}) failed during execution; acknowledge it with the "
            f"{ACKNOWLEDGED_ANNOTATION} annotation or delete it once the target has been checked",
            blocking_workflow_execution=last.key,
            incident=f"{last.key}",
        )

    # 2 DuplicateInProgress: the oldest live request of the fingerprint goes first; the others inherit from it.
    created = rr.metadata.creation_timestamp or now
    me = (created, name)
    older = [r for r in view.live_requests(namespace, fingerprint) if r.name != name and _order(r) < me]
    if older:
        original = min(older, key=_order)
        return Decision.blocked(
            BlockReason.DUPLICATE_IN_PROGRESS,
            # No phase of the original here: it goes stale, and re-routing would rewrite the status for it.
            f"duplicate of {original.name}, an older request of the same signal; this request inherits its outcome",
            duplicate_of=original.name,
        )

    chain = failure_chain(view.executed_requests(namespace, fingerprint))

    # 3 ConsecutiveFailures: a circuit breaker per fingerprint.
    if (
        not bypass_time_blocks
        and chain.last_failure is not None
        and chain.count >= settings.consecutive_failure_threshold
        and now < chain.last_failure + settings.consecutive_failure_cooldown
    ):
        until = chain.last_failure + settings.consecutive_failure_cooldown
        return Decision.blocked(
            BlockReason.CONSECUTIVE_FAILURES,
            f"{chain.count} consecutive failures of this signal (last in {chain.source}); cooldown until "
            f"{format_time(until)}",
            until=until,
            incident=f"{fingerprint}@{format_time(chain.last_failure)}",
        )

    # 4 ResourceBusy: never two executions on one target.
    busy = _newest(e for e in executions if e.live)
    if busy is not None:
        return Decision.blocked(
            BlockReason.RESOURCE_BUSY,
            f"another workflow ({busy.key}) is running on {target}",
            blocking_workflow_execution=busy.key,
        )

    workflow_id = rr.spec.workflow_ref.workflow_id
    if not bypass_time_blocks:
        # 5 RecentlyRemediated: let the last fix settle before running the same workflow again.
        cooldown = settings.recently_remediated_cooldown
        recent = [
            e
            for e in executions
            if e.phase is ExecutionPhase.COMPLETED
            and e.workflow_id == workflow_id
            and e.completion_time is not None
            and now < e.completion_time + cooldown
        ]
        if recent:
            latest = max(recent, key=lambda e: (e.completion_time or e.created, e.name))
            until = (latest.completion_time or now) + cooldown
            return Decision.blocked(
                BlockReason.RECENTLY_REMEDIATED,
                f"{workflow_id} completed on {target} at {format_time(latest.completion_time or now)} "
                f"({latest.key}); cooldown until {format_time(until)}",
                until=until,
                blocking_workflow_execution=latest.key,
            )

        # 6 ExponentialBackoff: the fingerprint failed recently; wait before trying again.
        if chain.next_allowed_execution is not None and now < chain.next_allowed_execution:
            return Decision.blocked(
                BlockReason.EXPONENTIAL_BACKOFF,
                f"{chain.count} recent failure(s) of this signal (last in {chain.source}); next attempt at "
                f"{format_time(chain.next_allowed_execution)}",
                until=chain.next_allowed_execution,
            )

    return Decision.execute()


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
