"""The orchestrator's read-only view of its caches: index functions, and what routing sees of each object.

Reading a few keys of a cached dict costs a fraction of a microsecond, parsing it into a model about ten, so routing
works on small projections (`Execution`, `Request`) built from the cached dicts. Every field read here is read
leniently: an object that breaks the schema still yields a projection (an unknown phase counts as live, which is
the safe side).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.chains import CHAIN_ACKNOWLEDGED_ANNOTATION, Link, LinkKind
from orchestrator.routing import ACKNOWLEDGED_ANNOTATION, Execution, Request
from shared.kubetime import read_time
from shared.models import ExecutionPhase, FailurePhase, Outcome, RemediationPhase, RemediationRequest, SkipReason
from shared.runtime.store import IndexFunc, KubeDict, ReadOnlyStore, object_key, section
from shared.target import canonical_target

E = TypeVar("E", bound=StrEnum)

# Index names.
RR_LIVE_FINGERPRINT = "live-fingerprint"
RR_EXECUTED_FINGERPRINT = "executed-fingerprint"
RR_FINGERPRINT = "fingerprint"
RR_DUPLICATE_OF = "duplicate-of"
RR_BLOCKING_WFE = "blocking-workflow-execution"
RR_BLOCKED = "blocked"
RR_CHAIN_LINK = "chain-link"
RR_CHAIN_ACKNOWLEDGED = "chain-acknowledged"
RR_DRY_RUN_TARGET = "dry-run-target"
WFE_TARGET = "target"
WFE_OWNER = "owner"

_TERMINAL_RR = {p.value for p in RemediationPhase if p.terminal}
_NO_TIME = datetime.min.replace(tzinfo=UTC)  # an object without a timestamp sorts first


def status_of(obj: KubeDict) -> dict[str, Any]:
    return section(obj, "status")


def _spec(obj: KubeDict) -> dict[str, Any]:
    return section(obj, "spec")


def _enum(cls: type[E], value: object) -> E | None:
    if not isinstance(value, str):
        return None
    try:
        return cls(value)
    except ValueError:
        return None


def fingerprint_key(namespace: str | None, fingerprint: str) -> str:
    return f"{namespace or ''}/{fingerprint}"


def chain_key(namespace: str | None, fingerprint: str, target: str) -> str:
    return f"{namespace or ''}/{fingerprint}\x00{target}"


def blocking_key(namespace: str | None, reference: str) -> str:
    """`blockingWorkflowExecution` holds a name, or namespace/name when the WFE is in another namespace."""
    return reference if "/" in reference else f"{namespace or ''}/{reference}"


# -- RemediationRequest indexes -----------------------------------------------------------------------------
def _fingerprint_of(obj: KubeDict) -> str | None:
    value = _spec(obj).get("signalFingerprint")
    return fingerprint_key(obj["metadata"].get("namespace"), value) if isinstance(value, str) else None


def index_fingerprint(obj: KubeDict) -> list[str]:
    key = _fingerprint_of(obj)
    return [key] if key else []


def index_live_fingerprint(obj: KubeDict) -> list[str]:
    key = _fingerprint_of(obj)
    return [key] if key and status_of(obj).get("phase") not in _TERMINAL_RR else []


def index_executed_fingerprint(obj: KubeDict) -> list[str]:
    key = _fingerprint_of(obj)
    return [key] if key and request_from(obj).executed else []


def index_duplicate_of(obj: KubeDict) -> list[str]:
    original = status_of(obj).get("duplicateOf")
    return [f"{obj['metadata'].get('namespace') or ''}/{original}"] if isinstance(original, str) and original else []


def index_blocking_workflow_execution(obj: KubeDict) -> list[str]:
    reference = status_of(obj).get("blockingWorkflowExecution")
    if not isinstance(reference, str) or not reference:
        return []
    return [blocking_key(obj["metadata"].get("namespace"), reference)]


def index_blocked(obj: KubeDict) -> list[str]:
    status = status_of(obj)
    if status.get("phase") != RemediationPhase.BLOCKED:
        return []
    return [f"{obj['metadata'].get('namespace') or ''}\x00{status.get('blockReason') or 'Unknown'}"]


def target_of(obj: KubeDict) -> str | None:
    """The request's canonical target, or None when its spec does not name one."""
    target = section(_spec(obj), "targetResource")
    kind, name, namespace = target.get("kind"), target.get("name"), target.get("namespace")
    if not isinstance(kind, str) or not isinstance(name, str) or not kind or not name:
        return None
    try:
        return canonical_target(kind, name, namespace if isinstance(namespace, str) else None)
    except ValueError:
        return None  # an index function must never raise: such a request fails validation anyway


def index_chain_link(obj: KubeDict) -> list[str]:
    """SPEC 4.9: requests of a fingerprint and target that completed (also dry runs), failed in execution, or were
    skipped for an ineffective chain. Keyed by namespace, fingerprint and target: a chain never crosses them."""
    fingerprint, target = _spec(obj).get("signalFingerprint"), target_of(obj)
    if not isinstance(fingerprint, str) or target is None or link_from(obj) is None:
        return []
    return [chain_key(obj["metadata"].get("namespace"), fingerprint, target)]


def index_chain_acknowledged(obj: KubeDict) -> list[str]:
    if not (obj["metadata"].get("annotations") or {}).get(CHAIN_ACKNOWLEDGED_ANNOTATION):
        return []
    key = _fingerprint_of(obj)
    return [key] if key else []


def index_dry_run_target(obj: KubeDict) -> list[str]:
    """Requests that completed as dry runs, by canonical target (any namespace, like WorkflowExecutions): check 6
    reads them next to the WorkflowExecutions on the target, so a dry run blocks as a real completion would."""
    if status_of(obj).get("outcome") != Outcome.DRY_RUN:
        return []
    target = target_of(obj)
    return [target] if target else []


RR_INDEXERS: dict[str, IndexFunc] = {
    RR_FINGERPRINT: index_fingerprint,
    RR_LIVE_FINGERPRINT: index_live_fingerprint,
    RR_EXECUTED_FINGERPRINT: index_executed_fingerprint,
    RR_DUPLICATE_OF: index_duplicate_of,
    RR_BLOCKING_WFE: index_blocking_workflow_execution,
    RR_BLOCKED: index_blocked,
    RR_CHAIN_LINK: index_chain_link,
    RR_CHAIN_ACKNOWLEDGED: index_chain_acknowledged,
    RR_DRY_RUN_TARGET: index_dry_run_target,
}


# -- WorkflowExecution indexes --------------------------------------------------------------------------------
def index_target(obj: KubeDict) -> list[str]:
    target = _spec(obj).get("targetResource")
    return [target] if isinstance(target, str) and target else []


def owner_of(obj: KubeDict) -> str | None:
    """The key of the RemediationRequest a WorkflowExecution serves (controller owner, else the spec's ref)."""
    meta = obj["metadata"]
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "RemediationRequest" and owner.get("controller"):
            return f"{meta.get('namespace') or ''}/{owner.get('name')}"
    ref = _spec(obj).get("remediationRequestRef")
    if isinstance(ref, dict) and ref.get("name"):
        return f"{ref.get('namespace') or meta.get('namespace') or ''}/{ref['name']}"
    return None


def index_owner(obj: KubeDict) -> list[str]:
    owner = owner_of(obj)
    return [owner] if owner else []


WFE_INDEXERS: dict[str, IndexFunc] = {WFE_TARGET: index_target, WFE_OWNER: index_owner}


# -- ownership (SPEC 4.2) -------------------------------------------------------------------------------------
_WFE_NAME_HASH = 10  # hex digits of sha256(uid): 40 bits against a collision between two requests' executions


def workflow_execution_name(rr_name: str, rr_uid: str) -> str:
    """The request's own WorkflowExecution: its name plus a hash of its uid, so re-creating it is idempotent and a
    namesake request (same name, another uid) never meets the execution a deleted one left behind. At most 253
    characters and a DNS subdomain, as a name must be: a long request name is cut (never mid-separator)."""
    suffix = hashlib.sha256(rr_uid.encode()).hexdigest()[:_WFE_NAME_HASH]
    head = rr_name[: 253 - 1 - len(suffix)].rstrip("-.")
    return f"{head}-{suffix}" if head else suffix


def owned_by(obj: KubeDict, uid: str | None) -> bool:
    """SPEC 4.2: an object is a request's own only when its controller owner reference carries the request's uid."""
    return uid is not None and any(
        o.get("controller") and o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or []
    )


# -- projections --------------------------------------------------------------------------------------------
def execution_from(obj: KubeDict) -> Execution:
    meta = obj["metadata"]
    status = status_of(obj)
    details = section(status, "failureDetails")
    was_execution_failure = details.get("wasExecutionFailure")
    return Execution(
        namespace=meta.get("namespace") or "",
        name=meta["name"],
        created=read_time(meta.get("creationTimestamp")) or _NO_TIME,
        phase=_enum(ExecutionPhase, status.get("phase")),
        workflow_id=str(section(_spec(obj), "workflowRef").get("workflowId", "")),
        completion_time=read_time(status.get("completionTime")),
        was_execution_failure=was_execution_failure if isinstance(was_execution_failure, bool) else None,
        acknowledged=bool((meta.get("annotations") or {}).get(ACKNOWLEDGED_ANNOTATION)),
    )


def request_from(obj: KubeDict) -> Request:
    meta = obj["metadata"]
    status = status_of(obj)
    count = status.get("consecutiveFailureCount")
    return Request(
        namespace=meta.get("namespace") or "",
        name=meta["name"],
        created=read_time(meta.get("creationTimestamp")) or _NO_TIME,
        phase=_enum(RemediationPhase, status.get("phase")),
        completion_time=read_time(status.get("completionTime")),
        failure_phase=_enum(FailurePhase, status.get("failurePhase")),
        outcome=_enum(Outcome, status.get("outcome")),
        consecutive_failure_count=count if isinstance(count, int) else 0,
        next_allowed_execution=read_time(status.get("nextAllowedExecution")),
        start_time=read_time(status.get("startTime")),
    )


def link_from(obj: KubeDict) -> Link | None:
    """The request as a link of its ineffective chain, or None when it is none (live, never executed, inherited)."""
    meta = obj["metadata"]
    status = status_of(obj)
    phase, outcome = status.get("phase"), status.get("outcome")
    if phase == RemediationPhase.COMPLETED and outcome in (Outcome.REMEDIATED, Outcome.DRY_RUN):
        kind = LinkKind.COMPLETED
    elif phase == RemediationPhase.FAILED and status.get("failurePhase") == FailurePhase.WORKFLOW_EXECUTION:
        kind = LinkKind.FAILED
    elif phase == RemediationPhase.FAILED and status.get("skipReason") == SkipReason.INEFFECTIVE_CHAIN:
        kind = LinkKind.SKIPPED
    else:
        return None
    created = read_time(meta.get("creationTimestamp")) or _NO_TIME
    count = status.get("ineffectiveCount")
    return Link(
        name=meta["name"],
        created=created,
        time=read_time(status.get("completionTime")) or created,
        kind=kind,
        ineffective_count=count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0,
    )


def dry_run_from(obj: KubeDict) -> Execution:
    """A request that completed as a dry run, as check 6 sees a completed WorkflowExecution."""
    meta = obj["metadata"]
    status = status_of(obj)
    created = read_time(meta.get("creationTimestamp")) or _NO_TIME
    return Execution(
        namespace=meta.get("namespace") or "",
        name=meta["name"],
        created=created,
        phase=ExecutionPhase.COMPLETED,
        workflow_id=str(section(_spec(obj), "workflowRef").get("workflowId", "")),
        completion_time=read_time(status.get("completionTime")) or created,
        was_execution_failure=None,
        acknowledged=False,
        dry_run=True,
    )


class CacheView:
    """Routing's view of the informers' caches, plus executions we created whose fate is not known yet."""

    def __init__(self, requests: ReadOnlyStore, executions: ReadOnlyStore) -> None:
        self._requests = requests
        self._executions = executions
        self.uncertain: dict[str, Execution] = {}
        """target -> an execution whose create may have landed (the answer was lost); it counts as live."""
        self._dry_runs: dict[str, dict[str, Execution]] = {}
        """target -> request key -> a dry run decided whose Completed status is not written through yet."""

    def executions_on_target(self, target: str) -> Iterator[Execution]:
        yield from self._executions.by_index_projected(WFE_TARGET, target, execution_from)
        pending = self.uncertain.get(target)
        if pending is not None and self._executions.get(pending.key) is None:
            yield pending

    def live_requests(self, namespace: str, fingerprint: str) -> Iterable[Request]:
        found = self._requests.by_index_projected(
            RR_LIVE_FINGERPRINT, fingerprint_key(namespace, fingerprint), request_from
        )
        return [request if request.start_time is not None else self._routed(request) for request in found]

    def _routed(self, request: Request) -> Request:
        """A request with no startTime yet, with the time its own execution was made if it has one."""
        obj = self._requests.get(f"{request.namespace}/{request.name}")
        if obj is None:
            return request
        routed = self.routed_at(request.namespace, request.name, obj["metadata"].get("uid"), target_of(obj))
        return replace(request, start_time=routed) if routed is not None else request

    def routed_at(self, namespace: str, name: str, uid: object, target: str | None) -> datetime | None:
        """When the request's own WorkflowExecution was made, if it has one. A request whose status write was lost
        after it created its execution (or whose create's answer was lost) was routed all the same, then: check 2
        must order it so, or a request of the fingerprint routed meanwhile takes itself for the original and both
        run (found by the chaos suite)."""
        if not isinstance(uid, str):
            return None
        key = f"{namespace}/{workflow_execution_name(name, uid)}"
        execution = self._executions.get(key)
        if execution is not None and owned_by(execution, uid):
            return read_time(execution["metadata"].get("creationTimestamp"))
        pending = self.uncertain.get(target) if target else None
        return pending.created if pending is not None and pending.key == key else None

    def executed_requests(self, namespace: str, fingerprint: str) -> Iterable[Request]:
        return self._requests.by_index_projected(
            RR_EXECUTED_FINGERPRINT, fingerprint_key(namespace, fingerprint), request_from
        )

    def chain_links(self, namespace: str, fingerprint: str, target: str) -> Iterable[Link]:
        links = (
            link_from(o) for o in self._requests.by_index(RR_CHAIN_LINK, chain_key(namespace, fingerprint, target))
        )
        return [link for link in links if link is not None]

    def chain_acknowledgements(self, namespace: str, fingerprint: str) -> Iterable[datetime]:
        return [
            read_time(o["metadata"].get("creationTimestamp")) or _NO_TIME
            for o in self._requests.by_index(RR_CHAIN_ACKNOWLEDGED, fingerprint_key(namespace, fingerprint))
        ]

    def dry_runs_on_target(self, target: str) -> Iterable[Execution]:
        found = [dry_run_from(o) for o in self._requests.by_index(RR_DRY_RUN_TARGET, target)]
        pending = self._dry_runs.get(target)
        if pending:
            written = {e.key for e in found}
            found.extend(e for key, e in pending.items() if key not in written)
        return found

    def record_dry_run(self, target: str, rr: RemediationRequest, completed: datetime) -> None:
        """A dry run just decided for `rr`: it counts as a completion on `target` until `forget_dry_run`."""
        self._dry_runs.setdefault(target, {})[rr.key] = Execution(
            namespace=rr.metadata.namespace or "",
            name=rr.metadata.name or "",
            created=rr.metadata.creation_timestamp or completed,
            phase=ExecutionPhase.COMPLETED,
            workflow_id=rr.spec.workflow_ref.workflow_id,
            completion_time=completed,
            was_execution_failure=None,
            acknowledged=False,
            dry_run=True,
        )

    def forget_dry_run(self, target: str, key: str) -> None:
        pending = self._dry_runs.get(target)
        if pending is not None:
            pending.pop(key, None)
            if not pending:
                del self._dry_runs[target]


def resync_order(requests: ReadOnlyStore) -> list[str]:
    """Every request key, the most urgent first: time-based blocks by blockedUntil, then other live requests by age,
    then the ended ones. A new leader works through all of them; expired blocks must not wait behind the rest."""

    def urgency(obj: KubeDict) -> tuple[int, datetime, str]:
        status = status_of(obj)
        until = read_time(status.get("blockedUntil")) if status.get("phase") == RemediationPhase.BLOCKED else None
        if until is not None:
            return (0, until, obj["metadata"]["name"])
        request = request_from(obj)
        return (1 if request.live else 2, request.created, request.name)

    return [object_key(obj) for obj in sorted(requests.list(), key=urgency)]


def blocked_counts(requests: ReadOnlyStore) -> Iterator[tuple[str, str, int]]:
    """(namespace, reason, count) of Blocked requests, from the `blocked` index."""
    for value in requests.index_values(RR_BLOCKED):
        namespace, _, reason = value.partition("\x00")
        yield namespace, reason, len(requests.index_keys(RR_BLOCKED, value))
