"""The RemediationRequest reconciler (SPEC 4.1): reads the caches, asks routing, writes status and creates children.

Correctness rests on four habits:
- Decisions for one target are serialised in-process (a lock per target), and a WorkflowExecution we create is
  written through into the cache before the lock is released, so the next decision sees it at once (SPEC 4.5).
- A create whose answer was lost counts as live for its target until the watch shows it or a GET proves it absent.
- Every status write is a merge patch conditional on the resourceVersion the decision was based on; a 409 re-reads
  the object from the API server and decides again (retry on conflict).
- A time-based block asks the work queue to come back exactly at `blockedUntil`; nothing polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from orchestrator import notifications
from orchestrator.dryrun import DRY_RUN_DECISION, is_dry_run, would_run
from orchestrator.metrics import OrchestratorMetrics
from orchestrator.routing import (
    TIME_BASED_REASONS,
    UNBLOCK_ANNOTATION,
    Decision,
    Verdict,
    first_start_time,
    ineffective_count,
    record_failure,
    route,
)
from orchestrator.settings import OrchestratorSettings
from orchestrator.validation import semantic_problems
from orchestrator.view import (
    RR_BLOCKING_WFE,
    RR_DUPLICATE_OF,
    CacheView,
    execution_from,
    fingerprint_key,
    owned_by,
    request_from,
    status_of,
    workflow_execution_name,
)
from shared.duration import format_duration, later, parse_duration
from shared.kubetime import format_time
from shared.models import (
    BlockReason,
    ExecutionPhase,
    FailurePhase,
    ModelError,
    NotificationRequest,
    ObjectReference,
    Outcome,
    RemediationPhase,
    RemediationRequest,
    RemediationRequestStatus,
    SkipReason,
    WorkflowExecution,
)
from shared.models.conditions import set_condition
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.clock import Clock
from shared.runtime.controller import Result
from shared.runtime.events import EventRecorder
from shared.runtime.informer import Informer
from shared.runtime.keylock import KeyedLocks
from shared.runtime.status import reconcile_latest, update_status
from shared.runtime.store import KubeDict, section, split_key
from shared.target import label_value, target_label_value

log = structlog.get_logger("kubernaut.orchestrator")

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
LABEL_RR = "kubernaut.ai/remediation-request"
LABEL_TARGET = "kubernaut.ai/target"
ANNOTATION_TARGET = "kubernaut.ai/target"
_NEVER = object()
# The free-text fields of the status and their bounds, read from the model the CRD is generated from.
_TEXT_LIMITS = {
    str(info.alias): next(m.max_length for m in info.metadata if hasattr(m, "max_length"))
    for name, info in RemediationRequestStatus.model_fields.items()
    if name in ("message", "block_message", "reason", "failure_reason")
}


@dataclass
class _Change:
    """What a reconcile decided to do to a request's status, and what to say about it."""

    status: RemediationRequestStatus
    event: tuple[str, str, str] | None = None  # (type, reason, message)
    decision: Decision | None = None
    requeue: Result | None = None
    expired: BlockReason | None = None  # the time-based block this change ends at its expiry
    dry_run: bool = False  # a dry run completed where production would have created a WorkflowExecution


class RemediationReconciler:
    def __init__(
        self,
        client: KubeClient,
        requests: Informer,
        executions: Informer,
        *,
        settings: OrchestratorSettings,
        clock: Clock,
        events: EventRecorder,
        metrics: OrchestratorMetrics,
    ) -> None:
        self._client = client
        self._requests = requests
        self._executions = executions
        self._settings = settings
        self._routing = settings.routing()
        self._dry_run_namespaces = frozenset(settings.dry_run_namespaces)
        self._clock = clock
        self._events = events
        self._metrics = metrics
        self.view = CacheView(requests.store, executions.store)
        self._target_locks = KeyedLocks()
        self._fingerprint_locks = KeyedLocks()  # taken before a target lock, never after one
        self._reported_unparseable: dict[str, str] = {}
        self._expiries_seen: dict[str, datetime] = {}  # key -> blockedUntil whose expiry lag is observed
        self.enqueue: Callable[[str], None] = lambda key: None
        """Queue a request key; wired to the controller's queue by the application."""
        self.started_at: Callable[[], datetime | None] = lambda: None
        """When the controller last started (began leading); wired by the application."""
        self._caught_up_for: object = _NEVER  # the leadership (controller start) the executions were listed for
        self._take_over_lock = asyncio.Lock()

    def enqueue_waiting_on(self, wfe_key: str) -> None:
        """Queue every request blocked on the WorkflowExecution `wfe_key`."""
        for key in self._requests.store.index_keys(RR_BLOCKING_WFE, wfe_key):
            self.enqueue(key)

    # -- entry point ----------------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result:
        if self._requests.store.get(key) is None:
            self._reported_unparseable.pop(key, None)
            self._expiries_seen.pop(key, None)
        return await reconcile_latest(key, self._requests, self._client, self._reconcile)

    async def _reconcile(self, obj: KubeDict) -> Result:
        if obj["metadata"].get("deletionTimestamp"):
            return Result.done()
        await self._take_over_executions()
        try:
            rr = RemediationRequest.from_k8s(obj)
        except ModelError as error:
            await self._reject_unparseable(obj, error)
            return Result.done()
        phase = rr.status.phase if rr.status else None
        if phase is None or phase in (RemediationPhase.PENDING, RemediationPhase.BLOCKED):
            # Routing decisions of one fingerprint are serialised up to their status write (written through into the
            # cache), so the next decision sees who was routed first (check 2's tie-break by startTime).
            fingerprint = fingerprint_key(rr.metadata.namespace, rr.spec.signal_fingerprint)
            async with self._fingerprint_locks.hold(fingerprint):
                return await self._decide(obj, rr)
        return await self._decide(obj, rr)

    async def _decide(self, obj: KubeDict, rr: RemediationRequest) -> Result:
        status = rr.status or RemediationRequestStatus()
        now = self._clock.now()
        phase = status.phase
        if phase is None or phase is RemediationPhase.PENDING:
            change = await self._admit(rr, status.model_copy(), now)
        elif phase is RemediationPhase.BLOCKED:
            change = await self._reexamine_blocked(rr, status.model_copy(), now)
        elif phase is RemediationPhase.EXECUTING:
            change = await self._follow_execution(rr, status.model_copy(), now)
        else:
            change = _Change(status.model_copy())
        change.status.duplicate_count = len(self._requests.store.index_keys(RR_DUPLICATE_OF, rr.key)) or None
        try:
            await self._apply(obj, rr, change, now)
        finally:
            if change.dry_run:  # written through into the cache now, or to be decided again
                self.view.forget_dry_run(rr.spec.target_resource.canonical, rr.key)
        return change.requeue or Result.done()

    async def _take_over_executions(self) -> None:
        """Once per leadership, before the first decision: put every WorkflowExecution the cache has not seen into it.
        A standby's watches lag independently: its cache may hold a request's Executing status but not the run its
        predecessor just created, and deciding on that would call the run deleted and start a second one (SPEC 4.5)."""
        started = self.started_at()
        if self._caught_up_for == started:
            return
        async with self._take_over_lock:
            if self._caught_up_for == started:
                return
            unseen = await self._executions.catch_up()
            self._caught_up_for = started
            log.info("wfe.listed_on_takeover", unseen=unseen)

    # -- new requests ---------------------------------------------------------------------------------------
    async def _admit(self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime) -> _Change:
        status.phase = RemediationPhase.PENDING
        namespace = rr.metadata.namespace or ""
        try:
            target: str | None = rr.spec.target_resource.canonical
        except ValueError:
            target = None  # not a valid target: the validation below fails the request
        status.start_time = (
            status.start_time
            or self.view.routed_at(namespace, rr.metadata.name or "", rr.metadata.uid, target)
            or first_start_time(namespace, rr.spec.signal_fingerprint, self.view, now)
        )
        status.observed_generation = rr.metadata.generation
        problems = semantic_problems(rr)
        if problems:
            message = "invalid RemediationRequest: " + "; ".join(problems)
            return self._fail(rr, status, now, FailurePhase.ROUTING, "InvalidSpec", message)
        return await self._route(rr, status, now, bypass_time_blocks=False)

    # -- blocked requests -----------------------------------------------------------------------------------
    async def _reexamine_blocked(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime
    ) -> _Change:
        reason = status.block_reason
        unblock = bool((rr.metadata.annotations or {}).get(UNBLOCK_ANNOTATION))
        until = status.blocked_until
        expired = None
        if reason in TIME_BASED_REASONS and until is not None and now >= until:
            expired = reason
            self._observe_expiry(rr, until, now)

        if reason is BlockReason.CONSECUTIVE_FAILURES and expired and until and not unblock:
            notice = notifications.breaker_expired(rr, f"{rr.spec.signal_fingerprint}@{format_time(until)}")
            await self._notify(rr, status, notice)
            change = self._fail(
                rr,
                status,
                now,
                FailurePhase.BLOCKED,
                "ConsecutiveFailuresCooldownExpired",
                f"the consecutive-failure cooldown ended at {format_time(until)} without an execution",
                outcome=Outcome.NOT_EXECUTED,
            )
        elif reason is BlockReason.DUPLICATE_IN_PROGRESS and status.duplicate_of:
            # A manual unblock never makes a duplicate an execution of its own (SPEC 4.2): it still inherits.
            change = self._inherit(rr, status, now) or await self._route(rr, status, now, bypass_time_blocks=unblock)
        else:
            change = await self._route(rr, status, now, bypass_time_blocks=unblock)
        change.expired = expired
        return change

    def _observe_expiry(self, rr: RemediationRequest, until: datetime, now: datetime) -> None:
        """How late the first look at an expired block came: the timer's precision, once per expiry, whether or not
        the API then takes the decision (its errors are counted as reconcile errors and retries). Late from when we
        could act: a block that expired while no replica led is not our timer's lag."""
        key = rr.key
        if self._expiries_seen.get(key) == until:
            return
        self._expiries_seen[key] = until
        since = max(until, self.started_at() or until)
        self._metrics.blocked_expiry_lag_seconds.observe(max((now - since).total_seconds(), 0.0))

    def _inherit(self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime) -> _Change | None:
        """A duplicate takes its original's outcome once the original ends; None while it is still alive (or gone,
        in which case the duplicate is routed afresh)."""
        original = self._requests.store.get(f"{rr.metadata.namespace}/{status.duplicate_of}")
        if original is None:
            return None
        facts = request_from(original)
        if facts.live:
            return None
        self._clear_block(status)
        status.completion_time = now
        if facts.phase is RemediationPhase.COMPLETED:
            status.outcome = Outcome.INHERITED_COMPLETED
            message = f"inherited the outcome of {status.duplicate_of}, which completed"
            _conclude(rr, status, now, RemediationPhase.COMPLETED, "InheritedCompleted", message)
            return _Change(status, event=("Normal", "Completed", message))
        original_reason = status_of(original).get("failureReason") or str(facts.phase)
        return self._fail(
            rr,
            status,
            now,
            FailurePhase.DEDUPLICATED,
            str(original_reason),
            f"inherited the outcome of {status.duplicate_of}, which ended {facts.phase}",
            outcome=Outcome.INHERITED_FAILED,
        )

    # -- routing --------------------------------------------------------------------------------------------
    async def _route(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime, *, bypass_time_blocks: bool
    ) -> _Change:
        target = rr.spec.target_resource.canonical
        async with self._target_locks.hold(target):
            own = await self._own_execution(rr, target)
            if own is not None:
                # Routed before, its status write lost: the count it was routed with is what the chain gives now
                # (no link of its fingerprint and target can end while it is live).
                status.ineffective_count = ineffective_count(rr, self.view, now, self._routing) or None
                return self._executing(rr, status, now, own, created=False)
            decision = route(rr, self.view, now, self._routing, bypass_time_blocks=bypass_time_blocks)
            if decision.ineffective_count is not None:
                status.ineffective_count = decision.ineffective_count or None
            if decision.verdict is Verdict.EXECUTE and self._dry_run(rr):
                return self._complete_dry_run(rr, status, now, decision)
            if decision.verdict is Verdict.EXECUTE:
                created = await self._create_execution(rr, target, now)
                if created is None:
                    name = workflow_execution_name(rr.metadata.name or "", rr.metadata.uid or "")
                    return self._fail(
                        rr,
                        status,
                        now,
                        FailurePhase.ROUTING,
                        "WorkflowExecutionNameTaken",
                        f"WorkflowExecution {rr.metadata.namespace}/{name} exists and is not this request's "
                        "(another controller owner); it was not adopted and nothing was run",
                    )
                change = self._executing(rr, status, now, created, created=True)
                change.decision = decision
                return change
        if decision.verdict is Verdict.SKIP:
            return await self._skip(rr, status, now, decision)
        return await self._block(rr, status, now, decision)

    def _dry_run(self, rr: RemediationRequest) -> bool:
        return is_dry_run(rr, everywhere=self._settings.dry_run, namespaces=self._dry_run_namespaces)

    def _complete_dry_run(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime, decision: Decision
    ) -> _Change:
        """SPEC 4.8: where production would create a WorkflowExecution, end Completed/DryRun naming what would have
        run. Recorded in the view under the target's lock (as a created WorkflowExecution is written through), so the
        next decision on the target sees the completion at once, before its status write lands in the cache:
        RecentlyRemediated reads it as a completion of the workflow on the target; nothing is ever busy."""
        self.view.record_dry_run(rr.spec.target_resource.canonical, rr, now)
        self._clear_block(status, keep_duplicate_of=False)
        status.outcome = Outcome.DRY_RUN
        status.completion_time = now
        message = would_run(rr)
        status.workflow_execution_ref = None
        _conclude(rr, status, now, RemediationPhase.COMPLETED, "DryRun", message)
        # Routing let it through, as it would have in production; nothing was created.
        status.conditions = set_condition(
            status.conditions, "Routed", "True", "DryRun", message, now, rr.metadata.generation
        )
        return _Change(status, event=("Normal", "DryRun", message), decision=decision, dry_run=True)

    async def _own_execution(self, rr: RemediationRequest, target: str) -> KubeDict | None:
        """This request's WorkflowExecution if it exists (we may have created it before a crash or lost answer)."""
        key = f"{rr.metadata.namespace}/{workflow_execution_name(rr.metadata.name or '', rr.metadata.uid or '')}"
        existing = self._executions.store.get(key)
        pending = self.view.uncertain.get(target)
        if existing is None and pending is not None and pending.key == key:
            # Our last create's answer was lost: ask the server whether it landed.
            namespace, name = split_key(key)
            try:
                existing = await self._client.get(WFE, namespace, name)
                self._executions.write_through(existing)
            except ApiError as error:
                if not error.not_found:
                    raise
                self.enqueue_waiting_on(key)  # requests blocked on a create that never landed
            del self.view.uncertain[target]
        if existing is None:
            return None
        # Never adopt what is not ours; routing sees it as whatever it is on its target.
        return existing if owned_by(existing, rr.metadata.uid) else None

    async def _create_execution(self, rr: RemediationRequest, target: str, now: datetime) -> KubeDict | None:
        """Create the request's WorkflowExecution (or find it created); None when its name is taken by an object
        that is not this request's - never adopted (SPEC 4.2), though routing now sees it on its target."""
        body = self._workflow_execution(rr, target)
        try:
            created, _ = await self._client.create_or_get(WFE, body)
        except ApiError as error:
            if error.status == 0 or error.status >= 500:
                # The create may have landed even though we got no answer: hold the target until we know.
                self.view.uncertain[target] = execution_from(
                    {**body, "metadata": {**body["metadata"], "creationTimestamp": format_time(now)}}
                )
            raise
        self._executions.write_through(created)
        return created if owned_by(created, rr.metadata.uid) else None

    def _workflow_execution(self, rr: RemediationRequest, target: str) -> KubeDict:
        name = workflow_execution_name(rr.metadata.name or "", rr.metadata.uid or "")
        timeout = rr.spec.timeouts.executing if rr.spec.timeouts and rr.spec.timeouts.executing else None
        execution_config: dict[str, Any] = {
            "timeout": timeout or format_duration(self._settings.executing_timeout),
        }
        if rr.spec.workflow_ref.service_account_name:
            execution_config["serviceAccountName"] = rr.spec.workflow_ref.service_account_name
        spec: dict[str, Any] = {
            "remediationRequestRef": {
                "kind": rr.kind,
                "name": rr.metadata.name,
                "namespace": rr.metadata.namespace,
                "uid": rr.metadata.uid,
            },
            "workflowRef": rr.spec.workflow_ref.model_dump(mode="json", by_alias=True, exclude_none=True),
            "targetResource": target,
            "executionConfig": execution_config,
        }
        if rr.spec.parameters:
            spec["parameters"] = dict(rr.spec.parameters)
        return {
            "apiVersion": WFE.api_version,
            "kind": WFE.kind,
            "metadata": {
                "name": name,
                "namespace": rr.metadata.namespace,
                "labels": {LABEL_RR: label_value(rr.metadata.name or ""), LABEL_TARGET: target_label_value(target)},
                "annotations": {ANNOTATION_TARGET: target},
                "ownerReferences": [
                    {
                        "apiVersion": rr.api_version,
                        "kind": rr.kind,
                        "name": rr.metadata.name,
                        "uid": rr.metadata.uid,
                        "controller": True,
                    }
                ],
            },
            "spec": spec,
        }

    def _executing(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime, wfe: KubeDict, *, created: bool
    ) -> _Change:
        was_blocked = status.phase is RemediationPhase.BLOCKED
        self._clear_block(status, keep_duplicate_of=False)
        status.phase = RemediationPhase.EXECUTING
        status.workflow_execution_ref = ObjectReference(
            kind=WFE.kind, name=wfe["metadata"]["name"], namespace=wfe["metadata"].get("namespace")
        )
        status.message = f"executing workflow {rr.spec.workflow_ref.workflow_id} on {rr.spec.target_resource.canonical}"
        status.conditions = set_condition(
            status.conditions, "Routed", "True", "WorkflowExecutionCreated", status.message, now, rr.metadata.generation
        )
        status.conditions = set_condition(
            status.conditions,
            "Blocked",
            "False",
            "Unblocked" if was_blocked else "NotBlocked",
            "",
            now,
            rr.metadata.generation,
        )
        key = f"{wfe['metadata'].get('namespace')}/{wfe['metadata']['name']}"
        event = ("Normal", "WorkflowExecutionCreated", f"created WorkflowExecution {key}") if created else None
        return _Change(status, event=event, requeue=Result.at(self._deadline(rr, wfe, now)))

    async def _block(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime, decision: Decision
    ) -> _Change:
        assert isinstance(decision.reason, BlockReason)
        same_block = (
            status.phase is RemediationPhase.BLOCKED
            and status.block_reason is decision.reason
            and status.blocked_until == decision.until
        )
        status.phase = RemediationPhase.BLOCKED
        status.reason = decision.reason.value
        status.block_reason = decision.reason
        status.block_message = decision.message
        status.blocked_until = decision.until
        status.blocking_workflow_execution = _local_reference(rr, decision.blocking_workflow_execution)
        status.duplicate_of = decision.duplicate_of
        status.message = decision.message
        status.conditions = set_condition(
            status.conditions, "Routed", "False", "Blocked", decision.message, now, rr.metadata.generation
        )
        status.conditions = set_condition(
            status.conditions, "Blocked", "True", decision.reason.value, decision.message, now, rr.metadata.generation
        )
        if decision.reason is BlockReason.CONSECUTIVE_FAILURES and decision.incident:
            await self._notify(rr, status, notifications.breaker_open(rr, decision.incident, decision.message))
        event = None
        if not same_block:
            kind = "Warning" if decision.reason is BlockReason.CONSECUTIVE_FAILURES else "Normal"
            event = (kind, "Blocked", f"{decision.reason.value}: {decision.message}")
        requeue = Result.at(decision.until) if decision.until is not None else None
        return _Change(status, event=event, decision=decision, requeue=requeue)

    async def _skip(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime, decision: Decision
    ) -> _Change:
        assert isinstance(decision.reason, SkipReason)
        if decision.reason is SkipReason.INEFFECTIVE_CHAIN:
            notice = notifications.ineffective_chain(rr, decision.incident or rr.key, decision.message)
        else:
            assert decision.blocking_workflow_execution
            notice = notifications.manual_review(rr, decision.blocking_workflow_execution)
        await self._notify(rr, status, notice)
        change = self._fail(
            rr,
            status,
            now,
            FailurePhase.ROUTING,
            decision.reason.value,
            decision.message,
            outcome=Outcome.MANUAL_REVIEW_REQUIRED,
            event_reason="ManualReviewRequired",
        )
        status.skip_reason = decision.reason
        status.reason = decision.reason.value
        status.requires_manual_review = True
        status.blocking_workflow_execution = _local_reference(rr, decision.blocking_workflow_execution)
        change.decision = decision
        return change

    # -- executing requests ---------------------------------------------------------------------------------
    async def _follow_execution(
        self, rr: RemediationRequest, status: RemediationRequestStatus, now: datetime
    ) -> _Change:
        ref = status.workflow_execution_ref
        name = ref.name if ref else workflow_execution_name(rr.metadata.name or "", rr.metadata.uid or "")
        key = f"{(ref.namespace if ref else None) or rr.metadata.namespace}/{name}"
        wfe = self._executions.store.get(key)
        target = rr.spec.target_resource.canonical
        if wfe is None and target in self.view.uncertain:
            wfe = await self._own_execution(rr, target)
        if wfe is None:
            count, next_allowed = self._failure_history(rr, now)
            change = self._fail(
                rr,
                status,
                now,
                FailurePhase.WORKFLOW_EXECUTION,
                "WorkflowExecutionDeleted",
                f"WorkflowExecution {key} was deleted while it was executing; its outcome is unknown",
            )
            status.consecutive_failure_count, status.next_allowed_execution = count, next_allowed
            return change
        execution = execution_from(wfe)
        wfe_status = status_of(wfe)
        if execution.phase is ExecutionPhase.COMPLETED:
            status.outcome = Outcome.REMEDIATED
            status.completion_time = execution.completion_time or now
            message = f"workflow {rr.spec.workflow_ref.workflow_id} completed ({key})"
            _conclude(rr, status, now, RemediationPhase.COMPLETED, "Remediated", message)
            return _Change(status, event=("Normal", "Completed", message))
        if execution.phase is ExecutionPhase.FAILED:
            details = section(wfe_status, "failureDetails")
            reason = str(details.get("reason") or "Unknown")
            failed_at = execution.completion_time or now
            count, next_allowed = self._failure_history(rr, failed_at)
            change = self._fail(
                rr,
                status,
                now,
                FailurePhase.WORKFLOW_EXECUTION,
                reason,
                f"workflow failed ({key}): {details.get('message') or reason}",
            )
            status.completion_time = failed_at
            status.consecutive_failure_count, status.next_allowed_execution = count, next_allowed
            return change
        deadline = self._deadline(rr, wfe, now)
        if now >= deadline:
            limit = self._executing_timeout(rr)
            await self._notify(rr, status, notifications.timed_out(rr, format_duration(limit)))
            status.failure_phase = FailurePhase.TIMEOUT
            status.failure_reason = "ExecutingTimeout"
            status.completion_time = now
            message = f"still executing after {format_duration(limit)} ({key})"
            _conclude(rr, status, now, RemediationPhase.TIMED_OUT, "TimedOut", message)
            return _Change(status, event=("Warning", "TimedOut", message))
        return _Change(status, requeue=Result.at(deadline))

    def _executing_timeout(self, rr: RemediationRequest) -> timedelta:
        if rr.spec.timeouts and rr.spec.timeouts.executing:
            try:
                return parse_duration(rr.spec.timeouts.executing)
            except ValueError:
                pass  # admitted before validation refused it; the default is the safe reading
        return self._settings.executing_timeout

    def _deadline(self, rr: RemediationRequest, wfe: KubeDict, now: datetime) -> datetime:
        started = execution_from(wfe).created if wfe["metadata"].get("creationTimestamp") else now
        return later(started, self._executing_timeout(rr))

    def _failure_history(self, rr: RemediationRequest, failed_at: datetime) -> tuple[int, datetime | None]:
        executed = self.view.executed_requests(rr.metadata.namespace or "", rr.spec.signal_fingerprint)
        return record_failure(rr.metadata.name or "", failed_at, executed, rr.spec.signal_fingerprint, self._routing)

    # -- shared status steps --------------------------------------------------------------------------------
    def _fail(
        self,
        rr: RemediationRequest,
        status: RemediationRequestStatus,
        now: datetime,
        phase: FailurePhase,
        reason: str,
        message: str,
        *,
        outcome: Outcome | None = None,
        event_reason: str = "Failed",
    ) -> _Change:
        self._clear_block(status, keep_duplicate_of=phase is FailurePhase.DEDUPLICATED)
        status.phase = RemediationPhase.FAILED
        status.failure_phase = phase
        status.failure_reason = reason
        status.outcome = outcome
        _conclude(rr, status, now, RemediationPhase.FAILED, reason, message)
        return _Change(status, event=("Warning", event_reason, message))

    @staticmethod
    def _clear_block(status: RemediationRequestStatus, *, keep_duplicate_of: bool = True) -> None:
        status.reason = None
        status.block_reason = None
        status.block_message = None
        status.blocked_until = None
        status.blocking_workflow_execution = None
        if not keep_duplicate_of:
            status.duplicate_of = None

    async def _notify(
        self, rr: RemediationRequest, status: RemediationRequestStatus, notice: notifications.Notice
    ) -> None:
        refs = status.notification_request_refs or []
        if any(ref.name == notice.name for ref in refs):
            return
        _, created = await self._client.create_or_get(
            NotificationRequest.RESOURCE, notifications.notification_request(rr, notice)
        )
        if created:
            self._metrics.notification_requests_created_total.labels(notice.type.value).inc()
            log.info("notification.created", name=notice.name, type=notice.type.value, incident=notice.incident)
        status.notification_request_refs = [*refs, ObjectReference(kind="NotificationRequest", name=notice.name)]

    async def _apply(self, obj: KubeDict, rr: RemediationRequest, change: _Change, now: datetime) -> None:
        """Write the status if it changed (conditional on the version we read), then metrics and the Event."""
        old = status_of(obj)
        new = self._dump(change.status)
        try:
            RemediationRequestStatus.model_validate(new)  # the model carries the CRD's bounds
            updated = await update_status(self._client, self._requests, obj, new)
        except (ValidationError, ApiError) as error:
            if isinstance(error, ApiError) and error.status != 422:
                raise
            change = self._refused(rr, change, now, error)
            updated = await update_status(self._client, self._requests, obj, self._dump(change.status))
        if updated is None:
            return
        meta = obj["metadata"]
        namespace = meta.get("namespace") or ""
        if change.expired is not None:
            self._metrics.blocked_cooldown_expired_total.labels(namespace, change.expired).inc()
            self._expiries_seen.pop(f"{namespace}/{meta['name']}", None)
        if not old.get("phase"):
            self._metrics.phase_transitions_total.labels(namespace, "", RemediationPhase.PENDING).inc()
        old_phase = str(old.get("phase") or RemediationPhase.PENDING)
        new_phase = change.status.phase
        if new_phase is not None and new_phase != old_phase:
            self._metrics.phase_transitions_total.labels(namespace, old_phase, new_phase).inc()
            log.info("rr.phase_changed", from_phase=old_phase, to_phase=new_phase, reason=change.status.reason)
            if old_phase == RemediationPhase.BLOCKED and change.event is None:
                change.event = ("Normal", "Unblocked", change.status.message or "")
        if (
            change.status.phase is RemediationPhase.BLOCKED
            and change.status.block_reason is not None
            and (old.get("phase") != RemediationPhase.BLOCKED or old.get("blockReason") != change.status.block_reason)
        ):
            self._metrics.blocked_total.labels(namespace, change.status.block_reason).inc()
            log.info(
                "rr.blocked",
                reason=change.status.block_reason,
                until=format_time(change.status.blocked_until) if change.status.blocked_until else None,
            )
        if change.decision is not None:
            decision = change.decision
            verdict = DRY_RUN_DECISION if change.dry_run else decision.verdict.value
            reason = "" if change.dry_run or decision.reason is None else decision.reason.value
            self._metrics.routing_decisions_total.labels(namespace, verdict, reason).inc()
            if change.dry_run:
                log.info("rr.dry_run", message=change.status.message)
        if change.event is not None:
            type_, reason, message = change.event
            self._events.event(updated, "Warning" if type_ == "Warning" else "Normal", reason, message)

    def _refused(
        self, rr: RemediationRequest, change: _Change, now: datetime, error: ValidationError | ApiError
    ) -> _Change:
        """The status we decided does not fit the CRD (a bug, or a CRD older than this controller): write a minimal
        one that does, so the request never stays without a phase, and say why. An Executing request keeps its
        WorkflowExecution to follow; anything else ends Failed, since a block without its references would never
        be woken."""
        why = error.message if isinstance(error, ApiError) else str(error)
        log.error("rr.status_refused", phase=change.status.phase, error=why[:2000])
        decided = change.status
        status = RemediationRequestStatus(
            observed_generation=rr.metadata.generation,
            start_time=decided.start_time,
            notification_request_refs=decided.notification_request_refs,
            conditions=decided.conditions,
        )
        refused = f"the API server refused the {decided.phase} status this controller decided: {why}"[:4096]
        if decided.phase is RemediationPhase.EXECUTING and decided.workflow_execution_ref is not None:
            status.phase = RemediationPhase.EXECUTING
            status.workflow_execution_ref = decided.workflow_execution_ref
            status.message = f"{refused}; following {decided.workflow_execution_ref.name}"
            return _Change(status, event=("Warning", "StatusRefused", status.message), requeue=change.requeue)
        failed = self._fail(rr, status, now, FailurePhase.ROUTING, "StatusRefused", refused)
        failed.decision = change.decision
        return failed

    @staticmethod
    def _dump(status: RemediationRequestStatus) -> dict[str, Any]:
        """The status as written: free text cut to the CRD's bounds (messages quote names and targets)."""
        body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        for field, limit in _TEXT_LIMITS.items():
            if isinstance(body.get(field), str) and len(body[field]) > limit:
                body[field] = body[field][: limit - 3] + "..."
        return body

    async def _reject_unparseable(self, obj: KubeDict, error: ModelError) -> None:
        """An object that breaks our model: fail it once with a message naming the fields, log once, one Event."""
        meta = obj["metadata"]
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        version = str(meta.get("resourceVersion"))
        status = status_of(obj)
        if self._reported_unparseable.get(key) == version or status.get("phase") in (
            RemediationPhase.FAILED,
            RemediationPhase.COMPLETED,
            RemediationPhase.TIMED_OUT,
            RemediationPhase.SKIPPED,
        ):
            return
        self._reported_unparseable[key] = version
        message = "; ".join(error.problems)
        log.warning("rr.invalid", problems=error.problems)
        now = self._clock.now()
        text = f"invalid RemediationRequest: {message}"[:32768]
        generation = meta.get("generation") if isinstance(meta.get("generation"), int) else None
        conditions = [
            set_condition(None, type_, "False", reason, text if type_ != "Blocked" else "", now, generation)[0]
            for type_, reason in (
                ("Routed", "InvalidObject"),
                ("Blocked", "NotBlocked"),
                ("Succeeded", "InvalidObject"),
            )
        ]
        patch = {
            "phase": RemediationPhase.FAILED.value,
            "failurePhase": FailurePhase.ROUTING.value,
            "failureReason": "InvalidObject",
            "message": text,
            "completionTime": format_time(now),
            "observedGeneration": generation,
            "conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conditions],
        }
        try:
            updated = await self._client.patch_status(
                RR, meta.get("namespace"), meta["name"], patch, resource_version=meta.get("resourceVersion")
            )
        except ApiError as write_error:
            log.warning("rr.invalid_status_write_failed", status=write_error.status, error=write_error.message)
            updated = obj
        self._events.event(updated, "Warning", "Failed", f"invalid RemediationRequest: {message}")


def _conclude(
    rr: RemediationRequest,
    status: RemediationRequestStatus,
    now: datetime,
    phase: RemediationPhase,
    reason: str,
    message: str,
) -> None:
    """End the request in `phase`: the message, the completion time and all three conditions at once, consistent
    with the ending, so `kubectl wait --for=condition=...` and condition-based alerts never read a stale one."""
    generation = rr.metadata.generation
    status.phase = phase
    status.message = message
    status.completion_time = status.completion_time or now
    conditions = status.conditions
    if status.workflow_execution_ref is not None:  # it ran: routing let it through
        routed = next((c for c in conditions or [] if c.type == "Routed" and c.status == "True"), None)
        routed_reason, routed_message = (routed.reason, routed.message) if routed else ("WorkflowExecutionCreated", "")
        conditions = set_condition(conditions, "Routed", "True", routed_reason, routed_message, now, generation)
    else:
        conditions = set_condition(conditions, "Routed", "False", reason, message, now, generation)
    was_blocked = any(c.type == "Blocked" and c.status == "True" for c in conditions or [])
    blocked = next((c for c in conditions or [] if c.type == "Blocked"), None)
    blocked_reason = "Unblocked" if was_blocked else (blocked.reason if blocked else "NotBlocked")
    conditions = set_condition(conditions, "Blocked", "False", blocked_reason, "", now, generation)
    succeeded: Literal["True", "False"] = "True" if phase is RemediationPhase.COMPLETED else "False"
    status.conditions = set_condition(conditions, "Succeeded", succeeded, reason, message, now, generation)


def _local_reference(rr: RemediationRequest, key: str | None) -> str | None:
    """A WFE key as stored in `blockingWorkflowExecution`: the name when it is in the request's namespace."""
    if key is None:
        return None
    namespace, _, name = key.rpartition("/")
    return name if namespace == (rr.metadata.namespace or "") else key
