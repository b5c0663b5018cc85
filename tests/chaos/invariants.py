"""SPEC 7's invariants, checked at the end of a chaos run against the recorded events, the audit log and the final
state of the API server. Each check returns what it looked at and every violation it found, named by object.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from orchestrator.chains import Link, LinkKind, ineffective_chain
from orchestrator.view import link_from, target_of
from sandbox.audit import AuditRecord
from sandbox.stack import USERS
from shared.duration import parse_duration
from shared.kubetime import parse_time
from tests.chaos.faults import FOREIGN_LABELS, INTRUDER, FaultRecord, Shutdown
from tests.chaos.load import Created
from tests.chaos.plan import INVALID_SPEC, NEVER_STARTS, SUCCEEDED, LoadPlan, Planned
from tests.chaos.recorder import Change, Recorder
from tests.chaos.system import ORCHESTRATOR_SETTINGS, Exit, Histogram

KubeDict = dict[str, Any]
TERMINAL_RR = {"Completed", "Failed", "TimedOut", "Skipped"}
TERMINAL_WFE = {"Completed", "Failed"}
TIME_BASED = {"ConsecutiveFailures", "RecentlyRemediated", "ExponentialBackoff"}
EXPIRY_GRACE = 1.0  # seconds: a time-based block past its blockedUntil by less than this may be being handled
LAG_BOUND = 1.0
LEASE_DURATION = 15.0
SHUTDOWN_BOUND = 10.0
MAX_SHOWN = 12


@dataclass
class Check:
    name: str
    invariant: str
    looked_at: int = 0
    violations: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.violations

    def fail(self, message: str) -> None:
        self.violations.append(message)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        note = f", {self.note}" if self.note else ""
        text = f"{verdict}  [{self.invariant}] {self.name} ({self.looked_at} checked{note})"
        for violation in self.violations[:MAX_SHOWN]:
            text += f"\n        - {violation}"
        if len(self.violations) > MAX_SHOWN:
            text += f"\n        ... and {len(self.violations) - MAX_SHOWN} more"
        return text


@dataclass
class Evidence:
    plan: LoadPlan
    created: dict[str, Created]
    load_failures: dict[str, str]
    recorder: Recorder
    final: dict[str, dict[str, KubeDict]]  # plural -> key -> object, listed after the run settled
    checked_at: float  # wall-clock time of that list
    audit: list[AuditRecord]
    audit_missed: int
    lag: Histogram
    faults: list[FaultRecord]
    shutdowns: list[Shutdown]
    exits: list[Exit]
    stop_codes: dict[str, int]
    restarts: dict[str, int]  # component -> starts the harness asked for
    logs: dict[str, str] = field(default_factory=dict)  # controller component -> its whole log
    deaths: dict[str, list[float]] = field(default_factory=dict)  # component -> when each run was known dead
    ended_at: float = 0.0  # when every process had stopped


def _status(obj: KubeDict) -> KubeDict:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _meta(obj: KubeDict) -> KubeDict:
    return obj.get("metadata") or {}


def _spec(obj: KubeDict) -> KubeDict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _wfe_live(obj: KubeDict) -> bool:
    return _status(obj).get("phase") not in TERMINAL_WFE


def _run_live(obj: KubeDict) -> bool:
    conditions = _status(obj).get("conditions") or []
    return not any(c.get("type") == "Succeeded" and c.get("status") in ("True", "False") for c in conditions)


def _phase(obj: KubeDict | None) -> str | None:
    return None if obj is None else _status(obj).get("phase")


def _owner_uid(obj: KubeDict) -> str | None:
    return next((o.get("uid") for o in _meta(obj).get("ownerReferences") or [] if o.get("controller")), None)


def _by_owner(executions: dict[str, KubeDict]) -> dict[str, KubeDict]:
    """Owner uid -> WorkflowExecution: an execution is a request's own by its controller owner reference (its name
    is the request's plus a hash of the uid)."""
    return {uid: wfe for wfe in executions.values() if (uid := _owner_uid(wfe))}


def _reference_key(namespace: str, reference: str) -> str:
    return reference if "/" in reference else f"{namespace}/{reference}"


# -- invariant 1 ------------------------------------------------------------------------------------------------
def _one_live_per_target(
    name: str, changes: Iterable[Change], target_of: Callable[[KubeDict], str | None], live: Callable[[KubeDict], bool]
) -> Check:
    check = Check(name, "1")
    where: dict[str, str] = {}  # key -> target of a live object
    per_target: dict[str, set[str]] = defaultdict(set)
    for change in changes:
        check.looked_at += 1
        previous = where.pop(change.key, None)
        if previous is not None:
            per_target[previous].discard(change.key)
        target = target_of(change.obj)
        if change.type != "DELETED" and target and live(change.obj):
            where[change.key] = target
            per_target[target].add(change.key)
            if len(per_target[target]) > 1:
                check.fail(f"revision {change.revision}: {target} has {sorted(per_target[target])} live")
    return check


def check_one_live_execution_per_target(evidence: Evidence) -> list[Check]:
    recorder = evidence.recorder
    return [
        _one_live_per_target(
            "never two live WorkflowExecutions for one target",
            recorder.merged("workflowexecutions"),
            lambda obj: _spec(obj).get("targetResource"),
            _wfe_live,
        ),
        _one_live_per_target(
            "never two live PipelineRuns for one target",
            recorder.merged("pipelineruns"),
            lambda obj: (_meta(obj).get("annotations") or {}).get("kubernaut.ai/target"),
            _run_live,
        ),
    ]


# -- invariant 2 ------------------------------------------------------------------------------------------------
def check_settled(evidence: Evidence) -> Check:
    """Every request terminal, or Blocked for a reason that is true now."""
    check = Check("every RR terminal or Blocked for a current, correct reason", "2")
    requests = evidence.final["remediationrequests"]
    executions = evidence.final["workflowexecutions"]
    for key, obj in sorted(requests.items()):
        check.looked_at += 1
        status = _status(obj)
        phase = status.get("phase")
        namespace = _meta(obj).get("namespace") or ""
        if phase in TERMINAL_RR:
            continue
        if phase != "Blocked":
            ref = (status.get("workflowExecutionRef") or {}).get("name")
            wfe = executions.get(f"{namespace}/{ref}") if ref else None
            cause = f"its WorkflowExecution is {_status(wfe).get('phase') or 'new'}" if wfe else "no WorkflowExecution"
            check.fail(f"{key} is {phase or 'unhandled'} ({cause})")
            continue
        reason = status.get("blockReason")
        if reason == "ResourceBusy":
            blocking = status.get("blockingWorkflowExecution") or ""
            wfe = executions.get(_reference_key(namespace, blocking))
            target = _target_of_request(obj)
            if wfe is None or not _wfe_live(wfe) or _spec(wfe).get("targetResource") != target:
                state = "gone" if wfe is None else _status(wfe).get("phase")
                check.fail(f"{key} Blocked ResourceBusy on {blocking}, which is {state}")
        elif reason == "DuplicateInProgress":
            original = requests.get(f"{namespace}/{status.get('duplicateOf')}")
            same = original is not None and _spec(original).get("signalFingerprint") == _spec(obj).get(
                "signalFingerprint"
            )
            if original is None or _status(original).get("phase") in TERMINAL_RR or not same:
                state = "gone" if original is None else _status(original).get("phase")
                check.fail(f"{key} Blocked DuplicateInProgress on {status.get('duplicateOf')}, which is {state}")
        elif reason in TIME_BASED:
            until = status.get("blockedUntil")
            if not until or parse_time(until).timestamp() < evidence.checked_at - EXPIRY_GRACE:
                check.fail(f"{key} Blocked {reason} until {until}, which has passed")
        else:
            check.fail(f"{key} Blocked with reason {reason!r}")
    return check


def _target_of_request(obj: KubeDict) -> str:
    target = _spec(obj).get("targetResource") or {}
    kind, name, namespace = str(target.get("kind", "")).lower(), target.get("name"), target.get("namespace")
    return f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"


def check_outcomes(evidence: Evidence) -> Check:
    """Each ending says what really happened: the workflow's result, its failure class, the original's outcome."""
    check = Check("every RR's outcome and reason match what happened", "2")
    requests = evidence.final["remediationrequests"]
    executions = evidence.final["workflowexecutions"]
    designs = evidence.plan.designs
    history = _phase_history(evidence.recorder)
    owned = {_owner_uid(wfe): wfe for wfe in executions.values()}
    foreign = _foreign_runs(evidence.faults)
    for key, obj in sorted(requests.items()):
        status = _status(obj)
        phase = status.get("phase")
        if phase not in TERMINAL_RR:
            continue
        check.looked_at += 1
        design = designs.get(key)
        if design is None:
            check.fail(f"{key} was not created by the load")
            continue
        namespace = _meta(obj).get("namespace") or ""
        own = owned.get(_meta(obj).get("uid"))  # by controller owner uid: a namesake's is not its own
        if own is not None and _failed_on_foreign_run(own, foreign):
            if (status.get("failurePhase"), status.get("failureReason")) != ("WorkflowExecution", "Unknown"):
                check.fail(f"{key}: its execution met a foreign run but it ended {phase}/{status.get('failureReason')}")
            continue
        problem = _outcome_problem(design, obj, own, requests, executions, namespace, history.get(key, []))
        if problem:
            check.fail(f"{key} ({design.outcome.name}): {problem}")
    return check


FOREIGN_MARK = "was not created by the executor"


def _foreign_runs(faults: list[FaultRecord]) -> set[str]:
    """The lock names a foreign PipelineRun was placed at."""
    return {str(r.detail["run"]) for r in faults if r.kind == "foreign-run" and r.detail.get("placed")}


def _failed_on_foreign_run(own: KubeDict, foreign: set[str]) -> bool:
    """The execution refused to start because someone else's run held its lock (SPEC 5): Unknown, nothing ran, the
    run named. Only at a lock name where the chaos placed one."""
    details = _status(own).get("failureDetails") or {}
    message = str(details.get("message") or "")
    return (
        details.get("reason") == "Unknown"
        and details.get("wasExecutionFailure") is False
        and FOREIGN_MARK in message
        and any(f"/{name} " in message for name in foreign)
    )


def check_foreign_runs(evidence: Evidence) -> Check:
    """Someone else's PipelineRun at a lock name is never patched, cancelled nor deleted by the executor."""
    check = Check("a PipelineRun the executor did not create is left alone", "5")
    for record in evidence.faults:
        if record.kind != "foreign-run" or not record.detail.get("placed"):
            continue
        check.looked_at += 1
        if record.detail.get("untouched") is not True:
            check.fail(f"the foreign run {record.detail.get('run')} was changed or deleted while it stood there")
    return check


def _outcome_problem(
    design: Planned,
    obj: KubeDict,
    own: KubeDict | None,
    requests: dict[str, KubeDict],
    executions: dict[str, KubeDict],
    namespace: str,
    history: list[tuple[str, str | None]],
) -> str | None:
    status = _status(obj)
    phase, outcome, failure_phase = status.get("phase"), status.get("outcome"), status.get("failurePhase")
    reason = status.get("failureReason")
    if design.outcome is NEVER_STARTS:
        return _never_started_problem(status, own)
    if design.outcome is INVALID_SPEC:
        if (phase, failure_phase, reason) != ("Failed", "Routing", "InvalidSpec"):
            return f"an invalid spec ended {phase}/{failure_phase}/{reason}"
        if "spec.workflowRef.executionBundle" not in (status.get("message") or ""):
            return f"the message does not name the bad field: {status.get('message')!r}"
        return None
    if outcome == "DryRun" or design.dry_run:
        if not design.dry_run:
            return "ended DryRun, but it was not a dry run"
        if own is not None or outcome == "Remediated" or failure_phase == "WorkflowExecution":
            return f"a dry run that ran a workflow ({phase}/{outcome}/{failure_phase})"
        if outcome == "DryRun":
            return (
                None
                if phase == "Completed" and design.signal.workflow_id in (status.get("message") or "")
                else (f"a dry run ended {phase} with the message {status.get('message')!r}")
            )
        # Otherwise it ended as production would without running: blocked-expired, deduplicated or skipped.
    if own is not None and phase != "Failed" and outcome != "Remediated":
        return f"it has a WorkflowExecution but ended {phase}/{outcome}"
    if outcome == "Remediated":
        if phase != "Completed" or own is None or _status(own).get("phase") != "Completed":
            return f"Remediated without a completed WorkflowExecution of its own ({_status(own or {}).get('phase')})"
        if design.outcome is not SUCCEEDED:
            return "Remediated, but its workflow was made to fail"
        return None
    if outcome == "InheritedCompleted":
        original = requests.get(f"{namespace}/{status.get('duplicateOf')}")
        if original is None or _status(original).get("phase") != "Completed":
            return f"inherited Completed from {status.get('duplicateOf')}, which is {_phase(original)}"
        return None
    if failure_phase == "WorkflowExecution":
        if own is None:
            return f"failed in WorkflowExecution ({reason}) without a WorkflowExecution of its own"
        details = _status(own).get("failureDetails") or {}
        if _status(own).get("phase") != "Failed" or reason != details.get("reason"):
            return f"failureReason {reason} but its WorkflowExecution is {_phase(own)}/{details.get('reason')}"
        if design.outcome.reason != reason or design.outcome.execution_failure != details.get("wasExecutionFailure"):
            return (
                f"classified {reason}/wasExecutionFailure={details.get('wasExecutionFailure')}, expected "
                f"{design.outcome.reason}/{design.outcome.execution_failure}"
            )
        return None
    if failure_phase == "Deduplicated":
        original = requests.get(f"{namespace}/{status.get('duplicateOf')}")
        if original is None or _status(original).get("phase") in (None, "Completed", "Blocked", "Pending", "Executing"):
            return f"inherited a failure from {status.get('duplicateOf')}, which is {_phase(original)}"
        return None
    if reason == "PreviousExecutionFailed":
        blocking = status.get("blockingWorkflowExecution") or ""
        wfe = executions.get(_reference_key(namespace, blocking))
        details = _status(wfe or {}).get("failureDetails") or {}
        if wfe is None or _status(wfe).get("phase") != "Failed" or details.get("wasExecutionFailure") is not True:
            return f"skipped for the failed execution {blocking}, which is {_status(wfe or {}).get('phase')}"
        if _spec(wfe).get("targetResource") != _target_of_request(obj) or not status.get("requiresManualReview"):
            return f"skipped for {blocking}, which is on another target (or no manual review asked)"
        return None
    if reason == "IneffectiveChain":
        count = status.get("ineffectiveCount")
        if status.get("skipReason") != "IneffectiveChain" or not status.get("requiresManualReview"):
            return "an IneffectiveChain failure without the skip reason or the manual review"
        if not isinstance(count, int) or count < int(ORCHESTRATOR_SETTINGS["ineffective_chain_threshold"]):
            return f"skipped for an ineffective chain with ineffectiveCount {count!r}"
        return None  # whether the count is right: check_chains
    if failure_phase == "Blocked":
        if ("Blocked", "ConsecutiveFailures") not in history or outcome != "NotExecuted":
            return f"failed in Blocked ({reason}/{outcome}) without a ConsecutiveFailures block before"
        return None
    return f"an unexpected ending {phase}/{failure_phase}/{reason}/{outcome}"


def _never_started_problem(status: KubeDict, own: KubeDict | None) -> str | None:
    """A run Tekton never started: the request timed out (or its execution's deadline came first), and the
    executor ended the execution itself, DeadlineExceeded, nothing ran."""
    phase, failure_phase = status.get("phase"), status.get("failurePhase")
    if phase != "TimedOut" and (phase, failure_phase, status.get("failureReason")) != (
        "Failed",
        "WorkflowExecution",
        "DeadlineExceeded",
    ):
        return f"a run never started, but the request ended {phase}/{failure_phase}/{status.get('failureReason')}"
    details = _status(own or {}).get("failureDetails") or {}
    if _phase(own) != "Failed" or (details.get("reason"), details.get("wasExecutionFailure")) != (
        "DeadlineExceeded",
        False,
    ):
        return (
            f"its execution is {_phase(own)}/{details.get('reason')}/{details.get('wasExecutionFailure')}, "
            "not ended by the executor's deadline (DeadlineExceeded, nothing ran)"
        )
    return None


def check_chains(evidence: Evidence) -> Check:
    """SPEC 4.9 across restarts, leader changes and relists: the ineffectiveCount each request stored when it was
    routed is what the final state says it should have been. Each routed request (completed, dry run, failed in
    execution, skipped for a chain) is recounted from the chain links of its namespace, fingerprint and target that
    existed at its decision, by the orchestrator's own pure rule; a decision taken on a stale or partial cache (a
    link missing, a count read from the wrong request) stores another number. (No chain is acknowledged in the
    load, so acknowledgements play no part.)"""
    check = Check("every routed RR stored the ineffective count its chain had (SPEC 4.9)", "3")
    requests = evidence.final["remediationrequests"]
    executions = evidence.final["workflowexecutions"]
    window = parse_duration(ORCHESTRATOR_SETTINGS["ineffective_window"])
    owned = _by_owner(executions)
    links: dict[str, list[tuple[KubeDict, Link]]] = defaultdict(list)
    for obj in requests.values():
        link = link_from(obj)
        target = target_of(obj)
        if link is not None and target is not None:
            links[_chain_of(obj, target)].append((obj, link))
    tripped = counted = 0
    for key, obj in sorted(requests.items()):
        target, link = target_of(obj), link_from(obj)
        if link is None or target is None:
            continue
        decided = _decided_at(obj, link, owned.get(str(_meta(obj).get("uid"))))
        if decided is None:
            continue
        check.looked_at += 1
        created = parse_time(_meta(obj)["creationTimestamp"])
        earlier = [
            other
            for other_obj, other in links[_chain_of(obj, target)]
            if other.name != link.name and other.created <= created and other.time <= decided
        ]
        expected = ineffective_chain(created, earlier, [], window).count
        stored = _status(obj).get("ineffectiveCount") or 0
        tripped += link.kind is LinkKind.SKIPPED
        counted += expected > 0
        if stored != expected:
            names = ", ".join(
                f"{o.name}({o.kind}, {o.ineffective_count})" for o in sorted(earlier, key=lambda o: o.order)
            )
            check.fail(f"{key} stored ineffectiveCount {stored}, its chain gives {expected} (links: {names or 'none'})")
    check.note = f"{counted} with a count, {tripped} skipped for a tripped chain"
    return check


def _chain_of(obj: KubeDict, target: str) -> str:
    return f"{_meta(obj).get('namespace')}/{_spec(obj).get('signalFingerprint')}/{target}"


def _decided_at(obj: KubeDict, link: Link, own: KubeDict | None) -> datetime | None:
    """When the request's last routing decision was taken: its WorkflowExecution's creation (whole seconds, so
    one second of slack), or its end for a dry run or a skip; None when that cannot be told any more."""
    if link.kind is LinkKind.SKIPPED or _status(obj).get("outcome") == "DryRun":
        return link.time
    if own is None or _owner_uid(own) != _meta(obj).get("uid") or not _meta(own).get("creationTimestamp"):
        return None
    return parse_time(_meta(own)["creationTimestamp"]) + timedelta(seconds=1)


def check_every_outcome_ran(evidence: Evidence) -> Check:
    """The load's first requests, one per outcome class on targets of their own, each ran (or was refused)."""
    check = Check("every workflow outcome class ran once on its own target and ended as designed", "2")
    requests = evidence.final["remediationrequests"]
    first = {}
    for planned in evidence.plan.requests:
        first.setdefault(planned.outcome.name, planned)
    for name, planned in sorted(first.items()):
        check.looked_at += 1
        status = _status(requests.get(f"{planned.namespace}/{planned.name}") or {})
        ran = status.get("failurePhase") == "WorkflowExecution" or status.get("outcome") == "Remediated"
        if planned.outcome is NEVER_STARTS:
            ref = (status.get("workflowExecutionRef") or {}).get("name")  # its own, named from its uid
            own = evidence.final["workflowexecutions"].get(f"{planned.namespace}/{ref}") if ref else None
            ran = status.get("phase") in TERMINAL_RR and _never_started_problem(status, own) is None
        if planned.outcome is INVALID_SPEC:
            ran = status.get("failureReason") == "InvalidSpec"
        if not ran:
            check.fail(f"{planned.name} ({name}) ended {status.get('phase')}/{status.get('failureReason')}")
    return check


# -- invariant 3 ------------------------------------------------------------------------------------------------
def _phase_histories(recorder: Recorder) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    """(key, uid) -> the (phase, blockReason) sequence each request went through, consecutive repeats folded. By uid:
    a namesake created under a deleted request's key has a history of its own."""
    history: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
    for change in recorder.merged("remediationrequests"):
        if change.type == "DELETED":
            continue
        status = _status(change.obj)
        step = (status.get("phase") or "", status.get("blockReason"))
        steps = history[(change.key, str(_meta(change.obj).get("uid")))]
        if not steps or steps[-1] != step:
            steps.append(step)
    return history


def _phase_history(recorder: Recorder) -> dict[str, list[tuple[str, str | None]]]:
    """key -> the history of the request last created under that key."""
    return {key: steps for (key, _), steps in _phase_histories(recorder).items()}


def check_no_request_lost(evidence: Evidence) -> Check:
    check = Check("every RR created is seen, and none appears that was not", "3")
    seen = {change.key for change in evidence.recorder.logs["remediationrequests"].changes}
    final = evidence.final["remediationrequests"]
    for key, created in sorted(evidence.created.items()):
        check.looked_at += 1
        if key not in seen:
            check.fail(f"{key} was created but never recorded")
        if key not in final or _meta(final[key]).get("uid") != created.uid:
            check.fail(f"{key} is not on the server as created")
    for key, problem in evidence.load_failures.items():
        check.fail(f"{key} could not be created: {problem}")
    for key in sorted(set(final) - set(evidence.created)):
        check.fail(f"{key} is on the server but was never created by the load")
    return check


def check_handled_once(evidence: Evidence) -> list[Check]:
    recorder = evidence.recorder
    per_request = Check("at most one WorkflowExecution ever created per RR", "3")
    wfes: dict[str, set[str]] = defaultdict(set)
    for change in recorder.logs["workflowexecutions"].changes:
        wfes[_owner_uid(change.obj) or f"no owner: {change.key}"].add(str(_meta(change.obj).get("uid")))
    uid_to_key = {c.uid: key for key, c in evidence.created.items()}
    for owner, uids in wfes.items():
        per_request.looked_at += 1
        if len(uids) > 1:
            per_request.fail(f"{uid_to_key.get(owner, owner)} had {len(uids)} WorkflowExecutions")
    created = sum(
        1
        for r in evidence.audit
        if (r.verb, r.resource, r.subresource, r.code) == ("create", "workflowexecutions", "", 201)
    )
    recorded = len({uid for uids in wfes.values() for uid in uids})
    if created > recorded:
        per_request.fail(f"{created} WorkflowExecutions created (audit log) but only {recorded} recorded")

    per_execution = Check("at most one PipelineRun ever created per WorkflowExecution", "3")
    runs: dict[str, set[str]] = defaultdict(set)
    for change in recorder.logs["pipelineruns"].changes:
        annotations = _meta(change.obj).get("annotations") or {}
        if (_meta(change.obj).get("labels") or {}).items() >= FOREIGN_LABELS.items():
            continue  # someone else's run (the foreign-run fault), not one the executor created
        runs[annotations.get("kubernaut.ai/workflow-execution-uid") or "?"].add(str(_meta(change.obj).get("uid")))
    for owner, uids in runs.items():
        per_execution.looked_at += 1
        if len(uids) > 1:
            per_execution.fail(f"WorkflowExecution uid {owner} had {len(uids)} PipelineRuns")

    phases = Check("no RR ends twice, leaves an end, or executes twice", "3")
    for (key, _), steps in _phase_histories(recorder).items():
        phases.looked_at += 1
        names = [phase for phase, _ in steps]
        first_end = next((i for i, phase in enumerate(names) if phase in TERMINAL_RR), None)
        if first_end is not None and len(names) > first_end + 1:
            phases.fail(f"{key} went {' -> '.join(names)}")
        if names.count("Executing") > 1:
            phases.fail(f"{key} executed twice: {' -> '.join(names)}")
    return [per_request, per_execution, phases]


# -- invariant 5 ------------------------------------------------------------------------------------------------
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def check_writers(evidence: Evidence) -> Check:
    check = Check(
        "only the orchestrator writes RR status and creates WFEs; only the executor writes WFE status and PipelineRuns",
        "5",
    )
    orchestrator, executor, tekton = USERS["orchestrator"], USERS["executor"], USERS["tekton"]
    wrong: Counter[str] = Counter()
    for record in evidence.audit:
        if record.verb not in WRITES:
            continue
        allowed: set[str] | None = None
        if (record.resource, record.subresource) == ("remediationrequests", "status") or (
            record.resource,
            record.verb,
        ) == ("workflowexecutions", "create"):
            allowed = {orchestrator}
        elif record.resource == "workflowexecutions" and record.subresource == "status":
            allowed = {executor}
        elif record.resource == "pipelineruns" and record.subresource == "status":
            allowed = {executor, tekton}
        elif record.resource == "pipelineruns":
            allowed = {executor, INTRUDER} if record.verb in ("create", "delete") else {executor}
        if allowed is None:
            continue
        check.looked_at += 1
        if record.user not in allowed:
            subresource = f"/{record.subresource}" if record.subresource else ""
            wrong[f"{record.user} {record.verb} {record.resource}{subresource}"] += 1
    for what, count in wrong.items():
        check.fail(f"{what}: {count} times")
    return check


# -- timers, processes, shutdown --------------------------------------------------------------------------------
def check_expiry_lag(evidence: Evidence) -> Check:
    lag = evidence.lag
    p99 = lag.quantile(0.99)
    # For the record, not judged: blockedUntil to the decision that ended the block, failovers and API errors included.
    ended = sorted(expiry.lag for expiry in expiries(evidence.recorder, evidence.faults))
    end_to_end = (
        f"; end to end {len(ended)} expiries, p50 {ended[len(ended) // 2]:.3f} s, "
        f"p99 {ended[min(len(ended) - 1, int(len(ended) * 0.99))]:.3f} s, max {ended[-1]:.3f} s"
        if ended
        else ""
    )
    check = Check(
        f"blocked_expiry_lag_seconds p99 < {LAG_BOUND:g} s",
        "4",
        looked_at=int(lag.count),
        note=f"p99 {p99:.3f} s, {lag.share_at_most(LAG_BOUND):.1%} within {LAG_BOUND:g} s, "
        f"all within {lag.upper_bound():g} s{end_to_end}",
    )
    if lag.count == 0:
        check.fail("no time-based block expired during the run")
    elif not (p99 < LAG_BOUND and lag.share_at_most(LAG_BOUND) >= 0.99):
        check.fail(f"p99 is {p99:.3f} s; the late ones in the recorded log:")
        for expiry in sorted(expiries(evidence.recorder, evidence.faults), key=lambda e: -e.lag):
            if expiry.lag > LAG_BOUND:
                faults = ", ".join(expiry.faults) or "no fault"
                check.fail(f"{expiry.key} {expiry.reason} handled {expiry.lag:.2f} s late, during {faults}")
    return check


@dataclass(frozen=True)
class Expiry:
    key: str
    reason: str
    until: float
    handled: float  # when the decision that ended the block was made (its conditions' transition time)
    faults: tuple[str, ...]  # faults under way between blockedUntil and the decision

    @property
    def lag(self) -> float:
        return self.handled - self.until


def expiries(recorder: Recorder, faults: list[FaultRecord]) -> list[Expiry]:
    """Every time-based block that ended, from the recorded log, with the faults that overlapped its expiry."""
    found = []
    previous: dict[str, KubeDict] = {}
    for change in recorder.merged("remediationrequests"):
        status = _status(change.obj)
        before = previous.get(change.key) or {}
        previous[change.key] = status
        if before.get("phase") != "Blocked" or before.get("blockReason") not in TIME_BASED:
            continue
        if status.get("phase") == "Blocked" and status.get("blockedUntil") == before.get("blockedUntil"):
            continue
        until = parse_time(before["blockedUntil"]).timestamp()
        if status.get("phase") == "Blocked" and status.get("blockReason") not in TIME_BASED:
            continue  # became an event-based block (e.g. the target got busy), not an expiry
        times = [parse_time(c["lastTransitionTime"]).timestamp() for c in status.get("conditions") or []]
        handled = max(times, default=until)
        if handled < until:
            continue  # ended early: manual unblock or a new decision, not an expiry
        during = tuple(sorted({f.kind for f in faults if f.started <= handled and f.ended >= until - 0.5}))
        found.append(Expiry(change.key, str(before.get("blockReason")), until, handled, during))
    return found


def check_processes(evidence: Evidence) -> Check:
    check = Check("no process crashed or crash-looped; every process stopped cleanly", "-")
    for exit in evidence.exits:
        check.fail(f"{exit.name} exited by itself with {exit.code}")
    for name, code in sorted(evidence.stop_codes.items()):
        check.looked_at += 1
        if code != 0:
            check.fail(f"{name} exited {code} on SIGTERM at the end")
    check.note = "starts " + ", ".join(f"{n}={s}" for n, s in sorted(evidence.restarts.items()))
    return check


def check_shutdowns(evidence: Evidence) -> Check:
    check = Check(
        "SIGTERM of a leader: in-flight work finished, exit 0 within 10 s, Lease released, standby leads within one "
        "lease duration",
        "-",
    )
    leases = evidence.recorder.logs["leases"]
    for shutdown in evidence.shutdowns:
        check.looked_at += 1
        what = f"{shutdown.component} at {shutdown.signalled:.1f}"
        if shutdown.exit_code != 0:
            check.fail(f"{what}: exit code {shutdown.exit_code}")
        if shutdown.exit_seconds > SHUTDOWN_BOUND:
            check.fail(f"{what}: took {shutdown.exit_seconds:.1f} s to exit")
        stopped = [_json(line) for line in shutdown.log.splitlines() if '"controller.stopped"' in line]
        if not stopped or any(entry.get("cut_short") != 0 or entry.get("graceful") is not True for entry in stopped):
            check.fail(f"{what}: in-flight reconciles were not all finished: {stopped}")
        lease = [change for change in leases.changes if change.key == f"kubernaut-system/{shutdown.lease}"]
        before = [c for c in lease if c.revision <= shutdown.before_revision][-1:]
        after = [c for c in lease if c.revision > shutdown.before_revision]
        ahead = _fold([_spec(change.obj).get("holderIdentity") or "" for change in before + after])
        if len(ahead) < 3 or ahead[1] != "" or ahead[2] in ("", ahead[0]):
            check.fail(f"{what}: the Lease went {ahead[:4]} (expected holder -> released -> standby)")
        if shutdown.takeover_seconds is None or shutdown.takeover_seconds > LEASE_DURATION:
            check.fail(f"{what}: standby {shutdown.new_leader} led after {shutdown.takeover_seconds} s")
    if not evidence.shutdowns:
        check.note = "no SIGTERM in this run"
    return check


def leading_intervals(log: str, deaths: list[float], ended_at: float) -> list[tuple[float, float]]:
    """When one component led (wall clock), from its log's `leader.started_leading` / `leader.stopped_leading`; a
    run that died leading (SIGKILL, crash) led until it was known dead, one still leading at the end until then."""
    events: list[tuple[float, int]] = [(at, 0) for at in deaths]
    for line in log.splitlines():
        entry = _json(line)
        if entry.get("event") in ("leader.started_leading", "leader.stopped_leading"):
            at = datetime.fromisoformat(str(entry["timestamp"])).timestamp()
            events.append((at, 1 if entry["event"] == "leader.started_leading" else 0))
    intervals: list[tuple[float, float]] = []
    since: float | None = None
    for at, starts in sorted(events):
        if starts and since is None:
            since = at
        elif not starts and since is not None:
            intervals.append((since, at))
            since = None
    if since is not None:
        intervals.append((since, max(ended_at, since)))
    return intervals


def check_one_leader_at_a_time(evidence: Evidence) -> Check:
    """No instant with two replicas of one kind leading (issue 18.1): a leader stops before its standby may start."""
    check = Check("never two leaders of one kind at once", "4.5")
    for kind in ("orchestrator", "executor"):
        led = [
            (start, end, name)
            for name, log in sorted(evidence.logs.items())
            if name.startswith(f"{kind}-")
            for start, end in leading_intervals(log, evidence.deaths.get(name, []), evidence.ended_at)
        ]
        led.sort()
        check.looked_at += len(led)
        for index, (_, end, name) in enumerate(led):
            for other_start, other_end, other in led[index + 1 :]:
                if other_start >= end:
                    break
                if other != name:
                    check.fail(
                        f"{other} led from {other_start:.3f} while {name} led until {end:.3f} "
                        f"({min(end, other_end) - other_start:.3f} s of two leaders)"
                    )
    if not evidence.logs:
        check.fail("no process logs to judge leadership by")
    return check


def _fold(values: list[str]) -> list[str]:
    folded: list[str] = []
    for value in values:
        if not folded or folded[-1] != value:
            folded.append(value)
    return folded


def _json(line: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def check_recording(evidence: Evidence) -> Check:
    check = Check("the recorder saw every change and the audit log is complete", "-")
    for plural, log in evidence.recorder.logs.items():
        check.looked_at += len(log.changes)
        if log.gaps:
            check.fail(f"{plural}: {log.gaps} relists after 410 (history gaps)")
    if evidence.audit_missed:
        check.fail(f"{evidence.audit_missed} audit records were lost before they were read")
    check.note = "re-watches " + ", ".join(f"{p}={log.reconnects}" for p, log in evidence.recorder.logs.items())
    return check


def check_faults(evidence: Evidence) -> Check:
    """A fault that could not be injected is a finding too (say, no replica led for 30 s)."""
    check = Check("every fault was injected", "-", looked_at=len(evidence.faults))
    for record in evidence.faults:
        if record.error:
            check.fail(f"{record.kind} at {record.started:.1f}: {record.error}")
    return check


# -- issue 17's edges -----------------------------------------------------------------------------------------
def check_edges(evidence: Evidence) -> list[Check]:
    """Namesakes never adopt, same-second duplicates run once, an unblocked duplicate still inherits."""
    requests = evidence.final["remediationrequests"]
    executions = evidence.final["workflowexecutions"]
    ever_owned: dict[str, set[str]] = defaultdict(set)  # RR uid -> WFE uids it ever owned
    for change in evidence.recorder.logs["workflowexecutions"].changes:
        ever_owned[str(_owner_uid(change.obj))].add(str(_meta(change.obj).get("uid")))

    def uid(key: str) -> str:
        created = evidence.created.get(key)
        return created.uid if created else str(_meta(requests.get(key) or {}).get("uid"))

    adopt = Check("every RR's WorkflowExecution is its own (controller owner uid); namesakes never adopt", "3")
    for key, obj in sorted(requests.items()):
        ref = (_status(obj).get("workflowExecutionRef") or {}).get("name")
        if not ref:
            continue
        adopt.looked_at += 1
        wfe = executions.get(f"{_meta(obj).get('namespace')}/{ref}")
        if wfe is not None and _owner_uid(wfe) != _meta(obj).get("uid"):
            adopt.fail(f"{key} follows {ref}, owned by {_owner_uid(wfe)}, not by itself")
    for case in evidence.plan.namesakes:
        adopt.looked_at += 1
        key = f"{case.second.namespace}/{case.second.name}"
        status = _status(requests.get(key) or {})
        if key not in evidence.created or evidence.created[key].uid == "":
            adopt.fail(f"the namesake {key} was never created")
        elif status.get("phase") == "Completed" and not ever_owned.get(uid(key)):
            adopt.fail(f"the namesake {key} Completed/{status.get('outcome')} without an execution of its own")
        elif status.get("failureReason") == "WorkflowExecutionDeleted":
            adopt.fail(f"the namesake {key} failed WorkflowExecutionDeleted")

    same_second = Check("two requests of one signal created in one second run at most one workflow", "3")
    for pair in evidence.plan.same_second:
        same_second.looked_at += 1
        ran = [key for key in pair if ever_owned.get(uid(key))]
        if len(ran) > 1:
            same_second.fail(f"both {pair[0]} and {pair[1]} ran their workflow")

    unblocked = Check("a duplicate unblocked by hand still inherits; it never runs its own workflow", "3")
    for key in evidence.plan.unblocked_duplicates:
        obj = requests.get(key) or {}
        if not (_meta(obj).get("annotations") or {}).get("kubernaut.ai/unblock"):
            continue  # its original ended before it waited: nothing was unblocked
        unblocked.looked_at += 1
        if ever_owned.get(uid(key)):
            unblocked.fail(f"{key} ran a workflow of its own after the unblock")
        elif _status(obj).get("outcome") not in ("InheritedCompleted", "InheritedFailed", None):
            unblocked.fail(f"{key} ended {_status(obj).get('phase')}/{_status(obj).get('outcome')}")
    return [adopt, same_second, unblocked]


def run_checks(evidence: Evidence) -> list[Check]:
    return [
        check_faults(evidence),
        check_recording(evidence),
        *check_one_live_execution_per_target(evidence),
        check_settled(evidence),
        check_outcomes(evidence),
        check_chains(evidence),
        check_every_outcome_ran(evidence),
        check_no_request_lost(evidence),
        *check_handled_once(evidence),
        *check_edges(evidence),
        check_writers(evidence),
        check_foreign_runs(evidence),
        check_expiry_lag(evidence),
        check_shutdowns(evidence),
        check_one_leader_at_a_time(evidence),
        check_processes(evidence),
    ]
