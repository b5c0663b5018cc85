"""What each verb reports, as JSON-ready documents (`-o json` prints them as they are; `render` draws them).

Pure: built from objects already read. Routing is the orchestrator's own: the same indexes (orchestrator.view) over
a fresh list, the same `explain` (orchestrator.routing), the same settings class. Nothing here decides a check.
The keys are stable and listed in README.md ("kubectl kubernaut"); a new key may be added, none renamed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from kubectl_kubernaut.settings import SettingsOrigin, shown
from orchestrator.routing import (
    TIME_BASED_REASONS,
    UNBLOCK_ANNOTATION,
    Decision,
    Explanation,
    Verdict,
    unacknowledged_failure,
)
from orchestrator.view import RR_BLOCKING_WFE, RR_INDEXERS, WFE_INDEXERS, WFE_TARGET, CacheView, blocking_key
from shared.kubetime import format_time, read_time
from shared.models import BlockReason, RemediationPhase
from shared.runtime.store import Indexer, KubeDict, object_key, section
from shared.target import canonical_target

INEFFECTIVE_CHAIN_ACKNOWLEDGED_ANNOTATION = "kubernaut.ai/ineffective-chain-acknowledged"
INEFFECTIVE_CHAIN = "IneffectiveChain"  # SPEC 4.2 check 3's skip reason
PREVIOUS_EXECUTION_FAILED = "PreviousExecutionFailed"


# -- the routing view, from a fresh list --------------------------------------------------------------------------
@dataclass
class Snapshot:
    """RRs and WFEs as listed just now, indexed exactly as the orchestrator's caches are."""

    requests: Indexer
    executions: Indexer

    @property
    def view(self) -> CacheView:
        return CacheView(self.requests, self.executions)


def snapshot(requests: Iterable[KubeDict], executions: Iterable[KubeDict]) -> Snapshot:
    rr_store, wfe_store = Indexer(RR_INDEXERS), Indexer(WFE_INDEXERS)
    for obj in requests:
        rr_store.upsert(object_key(obj), obj)
    for obj in executions:
        wfe_store.upsert(object_key(obj), obj)
    return Snapshot(rr_store, wfe_store)


# -- small readers --------------------------------------------------------------------------------------------------
def remaining(until: datetime | None, now: datetime) -> int | None:
    """Whole seconds from `now` to `until` (0 once passed), None without a time."""
    if until is None:
        return None
    return max(int((until - now).total_seconds() + 0.999), 0)


def human_duration(seconds: int) -> str:
    """4s, 3m12s, 1h5m, 2d3h: as kubectl shows ages."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def annotations_of(obj: KubeDict) -> dict[str, str]:
    value = section(obj, "metadata").get("annotations")
    return value if isinstance(value, dict) else {}


def _key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


# -- explain --------------------------------------------------------------------------------------------------------
def decision_json(decision: Decision, now: datetime) -> dict[str, Any]:
    return {
        "verdict": decision.verdict.value,
        "reason": decision.reason.value if decision.reason else None,
        "message": decision.message,
        "until": format_time(decision.until) if decision.until else None,
        "remainingSeconds": remaining(decision.until, now),
        "blockingWorkflowExecution": decision.blocking_workflow_execution,
        "duplicateOf": decision.duplicate_of,
    }


def explain_report(
    rr: KubeDict,
    explanation: Explanation,
    requests: Mapping[str, KubeDict] | Indexer,
    now: datetime,
    origin: SettingsOrigin,
    *,
    bypass_time_blocks: bool,
    dry_run: bool,
    unblock_asked: bool,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """The explain document: the request, every check with its facts, the decision, and how it compares with the
    request's current status (and what the orchestrator does about a difference)."""
    meta, spec, status = rr["metadata"], section(rr, "spec"), section(rr, "status")
    decided = False
    checks = []
    for result in explanation.checks:
        decides = result.matched and not result.bypassed and not decided
        decided = decided or decides
        checks.append(
            {
                "check": result.check,
                "matched": result.matched,
                "decides": decides,
                "bypassed": result.bypassed,
                "facts": dict(result.facts),
                "decision": decision_json(result.decision, now) if result.decision else None,
            }
        )
    agrees, difference = compare(rr, explanation.decision, requests, now, unblock_asked=unblock_asked)
    return {
        "kind": "Explanation",
        "evaluatedAt": format_time(now),
        "request": {
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "created": meta.get("creationTimestamp"),
            "fingerprint": spec.get("signalFingerprint"),
            "target": _target(spec),
            "workflowId": section(spec, "workflowRef").get("workflowId"),
            "phase": status.get("phase"),
            "reason": status.get("blockReason") or status.get("skipReason") or status.get("failureReason"),
            "blockedUntil": status.get("blockedUntil"),
            "unblockAnnotation": annotations_of(rr).get(UNBLOCK_ANNOTATION),
        },
        "settings": settings_json(origin),
        "bypassTimeBlocks": bypass_time_blocks,
        "dryRun": dry_run,
        "checks": checks,
        "decision": decision_json(explanation.decision, now),
        "agreesWithStatus": agrees,
        "difference": difference,
        "notes": list(notes),
    }


def _target(spec: Mapping[str, Any]) -> str | None:
    target = section(dict(spec), "targetResource")
    kind, name = target.get("kind"), target.get("name")
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    try:
        return canonical_target(kind, name, target.get("namespace"))
    except ValueError:
        return None


def compare(
    rr: KubeDict,
    decision: Decision,
    requests: Mapping[str, KubeDict] | Indexer,
    now: datetime,
    *,
    unblock_asked: bool,
) -> tuple[bool | None, str | None]:
    """Whether the request's status is what `decision` says (None when routing no longer applies to it), and,
    when not, why and what the orchestrator does next (SPEC 4.1, 4.2, 4.4)."""
    meta, status = rr["metadata"], section(rr, "status")
    phase = status.get("phase")
    if unblock_asked:
        return None, "a preview: what routing would decide if the request were unblocked now (nothing was changed)"
    if phase in (None, "", RemediationPhase.PENDING):
        return None, "not routed yet: the orchestrator routes it next, with this decision unless something changes"
    if phase == RemediationPhase.EXECUTING:
        ref = section(status, "workflowExecutionRef").get("name")
        return None, (
            f"the request is Executing ({ref}): routing is done for it; the checks show what another request of "
            "this signal and target routed now would get (this one's own execution counts as busy)"
        )
    if phase != RemediationPhase.BLOCKED:
        return (
            None,
            f"the request has ended ({phase}): routing no longer applies; the checks show what it would get now",
        )
    reason = status.get("blockReason")
    until = read_time(status.get("blockedUntil"))
    if reason in TIME_BASED_REASONS and until is not None and now >= until:
        left = human_duration(remaining(now, until) or 0)
        if reason == BlockReason.CONSECUTIVE_FAILURES and not annotations_of(rr).get(UNBLOCK_ANNOTATION):
            return False, (
                f"the {reason} block ended at {format_time(until)} ({left} ago): the orchestrator ends the request "
                "at once as Failed (outcome NotExecuted, failurePhase Blocked), without routing it again"
            )
        return False, (
            f"the {reason} block ended at {format_time(until)} ({left} ago): the orchestrator re-routes it at once "
            "and will then decide as shown"
        )
    if reason == BlockReason.DUPLICATE_IN_PROGRESS and status.get("duplicateOf"):
        original = requests.get(_key(meta.get("namespace"), str(status["duplicateOf"])))
        if original is None:
            return False, (
                f"its original {status['duplicateOf']} is gone: the orchestrator routes it afresh at once, as shown"
            )
        original_phase = section(original, "status").get("phase")
        if original_phase in {p.value for p in RemediationPhase if p.terminal}:
            return False, (
                f"its original {status['duplicateOf']} has ended ({original_phase}): the orchestrator gives this "
                "request the original's outcome at once"
            )
    same = (
        decision.verdict is Verdict.BLOCK
        and decision.reason == reason
        and (decision.until == until or (decision.until is None and until is None))
        and (decision.duplicate_of or None) == (status.get("duplicateOf") or None)
        and _same_wfe(
            meta.get("namespace"), decision.blocking_workflow_execution, status.get("blockingWorkflowExecution")
        )
    )
    if same:
        return True, None
    return False, (
        f"the status says Blocked ({reason}) but routing decides {decision.verdict.value}"
        f"{' (' + decision.reason.value + ')' if decision.reason else ''} now: the orchestrator re-routes a blocked "
        "request when its cause changes (the blocking execution or original ends, its timer fires), so this shows "
        "a change it has not acted on yet; if it persists, check that the orchestrator runs and leads"
    )


def _same_wfe(namespace: str | None, decided: str | None, stored: object) -> bool:
    if not decided and not stored:
        return True
    if not decided or not isinstance(stored, str):
        return False
    return blocking_key(namespace, stored) == decided


# -- status ---------------------------------------------------------------------------------------------------------
def settings_json(origin: SettingsOrigin) -> dict[str, Any]:
    return {
        "source": origin.source,
        "deployment": origin.deployment,
        "note": origin.note or None,
        "values": shown(origin.settings),
    }


def status_report(
    snap: Snapshot, namespace: str | None, now: datetime, origin: SettingsOrigin, *, notes: Iterable[str] = ()
) -> dict[str, Any]:
    """RRs by phase and reason; the blocked ones with time left; what waits for a human, with the command."""
    requests = [
        obj for obj in snap.requests.list() if namespace is None or obj["metadata"].get("namespace") == namespace
    ]
    counts: Counter[tuple[str, str]] = Counter()
    blocked = []
    for obj in requests:
        status = section(obj, "status")
        phase = str(status.get("phase") or "Pending")
        reason = str(status.get("blockReason") or status.get("skipReason") or status.get("failureReason") or "")
        counts[(phase, reason)] += 1
        if phase == RemediationPhase.BLOCKED:
            until = read_time(status.get("blockedUntil"))
            blocked.append(
                {
                    "namespace": obj["metadata"].get("namespace"),
                    "name": obj["metadata"]["name"],
                    "reason": status.get("blockReason"),
                    "blockedUntil": status.get("blockedUntil"),
                    "remainingSeconds": remaining(until, now),
                    "blockingWorkflowExecution": status.get("blockingWorkflowExecution"),
                    "duplicateOf": status.get("duplicateOf"),
                    "message": status.get("blockMessage"),
                    "unblockCommand": _command("unblock rr", obj, "--reason '...'"),
                }
            )
    blocked.sort(key=lambda b: (b["remainingSeconds"] is None, b["remainingSeconds"] or 0, b["namespace"], b["name"]))
    return {
        "kind": "Status",
        "evaluatedAt": format_time(now),
        "namespace": namespace,
        "settings": settings_json(origin),
        "phases": [
            {"phase": phase, "reason": reason or None, "count": count}
            for (phase, reason), count in sorted(counts.items())
        ],
        "blocked": blocked,
        "manualReview": [*_failed_executions(snap, namespace), *_ineffective_chains(requests)],
        "notes": list(notes),
    }


def _failed_executions(snap: Snapshot, namespace: str | None) -> list[dict[str, Any]]:
    """Targets whose newest execution failed mid-run unacknowledged (check 1 matches for any request on them)."""
    view = snap.view
    waiting = []
    for target in sorted(snap.executions.index_values(WFE_TARGET)):
        failed = unacknowledged_failure(view.executions_on_target(target))
        if failed is None or (namespace is not None and failed.namespace != namespace):
            continue
        obj = snap.executions.get(failed.key) or {}
        details = section(section(obj, "status"), "failureDetails")
        skipped = sorted(snap.requests.index_keys(RR_BLOCKING_WFE, failed.key))
        waiting.append(
            {
                "kind": PREVIOUS_EXECUTION_FAILED,
                "namespace": failed.namespace,
                "target": target,
                "workflowExecution": failed.name,
                "failedAt": format_time(failed.completion_time) if failed.completion_time else None,
                "failureReason": details.get("reason"),
                "message": details.get("message"),
                "requests": skipped,
                "command": _command("ack wfe", obj, "--reason '...'"),
            }
        )
    return waiting


def _ineffective_chains(requests: list[KubeDict]) -> list[dict[str, Any]]:
    """Signals skipped as IneffectiveChain (SPEC 4.9) whose newest request on the target is that skip and is not
    acknowledged: the next request of the signal goes to a human too until someone acknowledges."""
    newest: dict[tuple[str, str, str], KubeDict] = {}
    for obj in requests:
        spec = section(obj, "spec")
        group = (str(obj["metadata"].get("namespace") or ""), str(spec.get("signalFingerprint")), str(_target(spec)))
        current = newest.get(group)
        if current is None or _created(obj) > _created(current):
            newest[group] = obj
    waiting = []
    for (namespace, fingerprint, target), obj in sorted(newest.items()):
        status = section(obj, "status")
        if status.get("skipReason") != INEFFECTIVE_CHAIN or annotations_of(obj).get(
            INEFFECTIVE_CHAIN_ACKNOWLEDGED_ANNOTATION
        ):
            continue
        waiting.append(
            {
                "kind": INEFFECTIVE_CHAIN,
                "namespace": namespace,
                "target": target,
                "fingerprint": fingerprint,
                "request": obj["metadata"]["name"],
                "ineffectiveCount": status.get("ineffectiveCount"),
                "message": status.get("message"),
                "command": _command("ack chain rr", obj, "--reason '...'"),
            }
        )
    return waiting


def _created(obj: KubeDict) -> tuple[datetime, datetime, str]:
    """Age order as check 2 has it: creationTimestamp (one-second resolution), then who was routed first
    (status.startTime; not routed yet comes last), then the name."""
    meta = obj["metadata"]
    created = read_time(meta.get("creationTimestamp")) or _NEVER
    started = read_time(section(obj, "status").get("startTime")) or _LAST
    return (created, started, str(meta["name"]))


_NEVER = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def _command(verb: str, obj: KubeDict, tail: str) -> str:
    meta = obj.get("metadata") or {}
    return f"kubectl kubernaut {verb} {meta.get('name')} -n {meta.get('namespace')} {tail}"


# -- the annotations ack and unblock write ----------------------------------------------------------------------
def annotation_value(who: str, source: str, reason: str, now: datetime) -> str:
    """Who and why, as JSON (SPEC 4.2, 4.9 take any non-empty value): stable keys by, via, at, reason."""
    return orjson.dumps({"by": who, "via": source, "at": format_time(now), "reason": reason}).decode()
