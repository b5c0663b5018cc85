"""The orchestrator's read-only view of its caches: index functions, and what routing sees of each object.

Reading a few keys of a cached dict costs a fraction of a microsecond, parsing it into a model about ten, so routing
works on small projections (`Execution`, `Request`) built from the cached dicts. Every field read here is read
leniently: an object that breaks the schema still yields a projection (an unknown phase counts as live, which is
the safe side).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestrator.routing import ACKNOWLEDGED_ANNOTATION, Execution, Request
from shared.kubetime import parse_time
from shared.models import ExecutionPhase, FailurePhase, Outcome, RemediationPhase
from shared.runtime.store import IndexFunc, KubeDict, ReadOnlyStore, object_key, section

E = TypeVar("E", bound=StrEnum)

# Index names.
RR_LIVE_FINGERPRINT = "live-fingerprint"
RR_EXECUTED_FINGERPRINT = "executed-fingerprint"
RR_FINGERPRINT = "fingerprint"
RR_DUPLICATE_OF = "duplicate-of"
RR_BLOCKING_WFE = "blocking-workflow-execution"
RR_BLOCKED = "blocked"
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


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def fingerprint_key(namespace: str | None, fingerprint: str) -> str:
    return f"{namespace or ''}/{fingerprint}"


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


RR_INDEXERS: dict[str, IndexFunc] = {
    RR_FINGERPRINT: index_fingerprint,
    RR_LIVE_FINGERPRINT: index_live_fingerprint,
    RR_EXECUTED_FINGERPRINT: index_executed_fingerprint,
    RR_DUPLICATE_OF: index_duplicate_of,
    RR_BLOCKING_WFE: index_blocking_workflow_execution,
    RR_BLOCKED: index_blocked,
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


# -- projections --------------------------------------------------------------------------------------------
def execution_from(obj: KubeDict) -> Execution:
    meta = obj["metadata"]
    status = status_of(obj)
    details = section(status, "failureDetails")
    was_execution_failure = details.get("wasExecutionFailure")
    return Execution(
        namespace=meta.get("namespace") or "",
        name=meta["name"],
        created=_time(meta.get("creationTimestamp")) or _NO_TIME,
        phase=_enum(ExecutionPhase, status.get("phase")),
        workflow_id=str(section(_spec(obj), "workflowRef").get("workflowId", "")),
        completion_time=_time(status.get("completionTime")),
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
        created=_time(meta.get("creationTimestamp")) or _NO_TIME,
        phase=_enum(RemediationPhase, status.get("phase")),
        completion_time=_time(status.get("completionTime")),
        failure_phase=_enum(FailurePhase, status.get("failurePhase")),
        outcome=_enum(Outcome, status.get("outcome")),
        consecutive_failure_count=count if isinstance(count, int) else 0,
        next_allowed_execution=_time(status.get("nextAllowedExecution")),
        start_time=_time(status.get("startTime")),
    )


class CacheView:
    """Routing's view of the informers' caches, plus executions we created whose fate is not known yet."""

    def __init__(self, requests: ReadOnlyStore, executions: ReadOnlyStore) -> None:
        self._requests = requests
        self._executions = executions
        self.uncertain: dict[str, Execution] = {}
        """target -> an execution whose create may have landed (the answer was lost); it counts as live."""

    def executions_on_target(self, target: str) -> Iterator[Execution]:
        yield from self._executions.by_index_projected(WFE_TARGET, target, execution_from)
        pending = self.uncertain.get(target)
        if pending is not None and self._executions.get(pending.key) is None:
            yield pending

    def live_requests(self, namespace: str, fingerprint: str) -> Iterable[Request]:
        return self._requests.by_index_projected(
            RR_LIVE_FINGERPRINT, fingerprint_key(namespace, fingerprint), request_from
        )

    def executed_requests(self, namespace: str, fingerprint: str) -> Iterable[Request]:
        return self._requests.by_index_projected(
            RR_EXECUTED_FINGERPRINT, fingerprint_key(namespace, fingerprint), request_from
        )


def resync_order(requests: ReadOnlyStore) -> list[str]:
    """Every request key, the most urgent first: time-based blocks by blockedUntil, then other live requests by age,
    then the ended ones. A new leader works through all of them; expired blocks must not wait behind the rest."""

    def urgency(obj: KubeDict) -> tuple[int, datetime, str]:
        status = status_of(obj)
        until = _time(status.get("blockedUntil")) if status.get("phase") == RemediationPhase.BLOCKED else None
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
