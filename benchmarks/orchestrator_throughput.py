"""End to end: 2 000 RemediationRequests created at once, until every one is routed; then until all is settled.

The sandbox runs in its own process, the orchestrator as a real subprocess (`sandbox.stack`, leader election off).
The mix, over 10 namespaces: 80 % on distinct targets, 10 % on shared targets (groups of up to four signals on one
Deployment), 8 % flapping (groups of up to four requests of one fingerprint), 2 % on a target whose last execution
failed during execution (seeded before the start): executed, blocked and skipped decisions.

1. Routing: from the first create until every request has left the empty/Pending phase, with no executor running,
   then until the orchestrator is quiet (follow-up writes, queued Events), so every orchestrator write counted from
   the audit log happened before any workflow ran. Writes per request by first decision (executed: status writes
   + WorkflowExecution create; target <= 2). An original also counts its duplicates (`duplicateCount`), which costs
   it a write per batch of duplicates that arrive after it was routed; it is reported apart.
2. Settling: the executor and the Tekton simulator (1 s runs) start; wait until every workflow ended and every
   request is terminal or waits on a time-based block (RecentlyRemediated on shared targets), then until both
   controllers are quiet (Events are written in the background and may lag).
3. Idle: 10 s with nothing to do: the orchestrator's (and executor's) API requests besides watches (target 0) and
   CPU seconds from /proc/<pid>/stat.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.objects import signal_when_stored
from sandbox.audit import AuditRecord
from sandbox.stack import EXECUTION_NAMESPACE, SYSTEM_NAMESPACE, USERS, Component, Stack
from sandbox.testing import SandboxHandle, sandbox_process
from shared.kubetime import format_time
from shared.models import RemediationRequest, WorkflowExecution
from shared.runtime.client import KubeClient
from shared.runtime.informer import EventHandler, Informer
from shared.runtime.store import KubeDict, object_key, section
from shared.target import canonical_target
from tests import factories

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
REQUESTS = 2000
NAMESPACES = tuple(f"team-{n}" for n in range(10))
CONCURRENCY = 32
IDLE_SECONDS = 10.0
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
TIME_BASED = frozenset({"RecentlyRemediated", "ExponentialBackoff", "ConsecutiveFailures"})


def _request(i: int) -> KubeDict:
    """Request i of the mix (see the module's docstring); the last two of each hundred hit a broken target."""
    namespace = NAMESPACES[(i // 100) % len(NAMESPACES)]
    slot, group = i % 100, i // 4
    workflow = ("restart-pods", "scale-up")[i % 2]
    if slot < 80:
        target, seed = f"app-{i}", f"signal-{i}"
    elif slot < 90:
        target, seed = f"shared-{group}", f"signal-{i}"
    elif slot < 98:
        target, seed = f"flapping-{group}", f"flapping-{group}"
    else:
        target, seed = f"broken-{i}", f"signal-{i}"
    return factories.remediation_request(
        f"rr-{i:04d}", namespace, target=("Deployment", target, namespace), workflow_id=workflow, fingerprint_seed=seed
    )


async def _seed_failed_executions(client: KubeClient) -> None:
    """A failed execution (during execution, unacknowledged) on every broken target, left by an earlier request."""
    for i in range(REQUESTS):
        if i % 100 < 98:
            continue
        spec = _request(i)["spec"]
        target = spec["targetResource"]
        namespace = target["namespace"]
        wfe = factories.workflow_execution(
            f"earlier-{i:04d}",
            namespace,
            rr_name=f"earlier-{i:04d}",
            target=canonical_target(target["kind"], target["name"], namespace),
        )
        await client.create(WFE, wfe)
        details = {"reason": "TaskFailed", "message": "step failed", "wasExecutionFailure": True}
        failed = {"phase": "Failed", "completionTime": format_time(datetime.now(UTC)), "failureDetails": details}
        await client.patch_status(WFE, namespace, wfe["metadata"]["name"], failed)


class Tracker:
    """The benchmark's own informer on requests: when each was first routed, its first decision, its latest status."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.routed: dict[str, tuple[float, dict[str, Any]]] = {}
        self.all_routed = asyncio.Event()
        informer.add_event_handler(EventHandler(on_add=self._seen, on_update=lambda _, new: self._seen(new)))

    def _seen(self, obj: KubeDict) -> None:
        status = section(obj, "status")
        key = object_key(obj)
        if status.get("phase") not in (None, "Pending") and key not in self.routed:
            self.routed[key] = (time.time(), status)
            if len(self.routed) >= REQUESTS:
                self.all_routed.set()

    def decision(self, key: str) -> str:
        status = self.routed[key][1]
        if status["phase"] == "Executing":
            return "executed"
        return f"blocked/{status['blockReason']}" if status["phase"] == "Blocked" else "skipped"


def _final(obj: KubeDict) -> str:
    status = section(obj, "status")
    return "/".join(str(status[f]) for f in ("phase", "outcome", "blockReason") if status.get(f))


def _lifetime_writes(records: Iterable[AuditRecord], requests: Informer) -> dict[str, float]:
    """Status writes per request over its whole life so far, by where it ended."""
    writes = Counter(
        f"{r.namespace}/{r.name}" for r in records if r.resource == "remediationrequests" and r.verb in WRITES
    )
    by_final: dict[str, list[int]] = {}
    for obj in requests.store.list():
        by_final.setdefault(_final(obj), []).append(writes[object_key(obj)])
    return {final: round(sum(counts) / len(counts), 3) for final, counts in sorted(by_final.items())}


def _duplicates(tracker: Tracker, key: str) -> int:
    obj = tracker.informer.store.get(key)
    return int(section(obj, "status").get("duplicateCount") or 0) if obj else 0


def _samples(component: Component, name: str) -> dict[str, float]:
    """The samples of one metric family from /metrics, by their label text."""
    prefix = f"kubernaut_remediationorchestrator_{name}"
    return {
        line[len(prefix) : line.rindex(" ")]: float(line.rsplit(" ", 1)[1])
        for line in component.metrics().splitlines()
        if line.startswith(prefix + "{")
    }


async def _drain(sandbox: SandboxHandle, users: list[str], quiet: float = 2.0, timeout: float = 300.0) -> Counter[str]:
    """Wait until `users` sent no request besides watches for `quiet` seconds (queued Events still being written);
    what they sent meanwhile."""
    sent: Counter[str] = Counter()
    since = (await sandbox.admin.aio.state())["auditLastSequence"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        records = [r for r in await sandbox.admin.aio.audit(since=since) if r.user in users and r.verb != "watch"]
        if not records:
            return sent
        sent.update(f"{r.verb} {r.resource}" for r in records)
        since = records[-1].sequence
    raise AssertionError(f"still sending requests after {timeout}s: {dict(sent)}")


def _cpu_seconds(component: Component) -> float:
    assert component.process is not None
    with open(f"/proc/{component.process.pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _group(tracker: Tracker, key: str) -> str:
    """The request's first decision; an executed original of duplicates apart, since it also counts them."""
    decision = tracker.decision(key)
    return f"{decision}/with-duplicates" if decision == "executed" and _duplicates(tracker, key) else decision


def _writes_by_decision(records: Iterable[AuditRecord], tracker: Tracker) -> dict[str, Any]:
    """Orchestrator writes per request, by its first decision. A create names no object in its path, so
    WorkflowExecution creates are counted per executed request, Events per request."""
    status_writes: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for record in records:
        if record.verb not in WRITES:
            continue
        if record.resource == "remediationrequests" and record.name:
            status_writes[f"{record.namespace}/{record.name}"] += 1
        else:
            other[f"{record.verb} {record.resource}"] += 1
    groups: dict[str, list[str]] = {}
    for key in tracker.routed:
        groups.setdefault(_group(tracker, key), []).append(key)
    executed = sum(len(keys) for group, keys in groups.items() if group.startswith("executed"))
    creates = other["create workflowexecutions"] / executed
    report: dict[str, Any] = {}
    for group, keys in sorted(groups.items()):
        writes = [status_writes[key] for key in keys]
        report[group] = {
            "requests": len(keys),
            "status_writes_per_request": round(sum(writes) / len(keys), 3),
            "max_status_writes": max(writes),
        }
        if group.startswith("executed"):
            report[group]["writes_per_request"] = round(sum(writes) / len(keys) + creates, 3)
        if group == "executed/with-duplicates":
            report[group]["duplicates"] = sum(_duplicates(tracker, key) for key in keys)
            report[group]["status_writes_beyond_one"] = sum(writes) - len(keys)
    report["workflow_execution_creates_per_executed_request"] = round(creates, 3)
    report["events_per_request"] = round(other["create events"] / len(tracker.routed), 3)
    report["all_writes"] = dict(sorted(other.items())) | {"patch remediationrequests": sum(status_writes.values())}
    return report


async def _settled(tracker: Tracker, executions: Informer, orchestrator: Component) -> bool:
    """Every workflow ended; every request terminal or waiting on a time-based block; nothing queued."""
    if any(section(o, "status").get("phase") not in ("Completed", "Failed") for o in executions.store.list()):
        return False
    for obj in tracker.informer.store.list():
        status = section(obj, "status")
        phase, reason = status.get("phase"), status.get("blockReason")
        if phase in (None, "Pending", "Executing") or (phase == "Blocked" and reason == "ResourceBusy"):
            return False
        if reason == "DuplicateInProgress":
            original = tracker.informer.store.get(f"{obj['metadata']['namespace']}/{status.get('duplicateOf')}")
            if original is None or section(original, "status").get("blockReason") not in TIME_BASED:
                return False
    metrics = await asyncio.to_thread(orchestrator.metrics)
    return 'workqueue_depth{name="remediationrequest"} 0.0' in metrics


async def _idle(sandbox: SandboxHandle, components: dict[str, Component]) -> dict[str, Any]:
    since = (await sandbox.admin.aio.state())["auditLastSequence"]
    cpu = {name: _cpu_seconds(c) for name, c in components.items()}
    await asyncio.sleep(IDLE_SECONDS)
    report: dict[str, Any] = {"seconds": IDLE_SECONDS}
    for name, component in components.items():
        records = await sandbox.admin.aio.audit(since=since, user=USERS[name])
        requests = Counter(f"{r.verb} {r.resource}" for r in records if r.verb != "watch")
        report[name] = {
            "api_requests_besides_watches": sum(requests.values()),
            "requests": dict(requests),
            "cpu_seconds": round(_cpu_seconds(component) - cpu[name], 3),
        }
    return report


async def _measure(sandbox: SandboxHandle, stack: Stack) -> dict[str, Any]:
    client = await KubeClient.connect(sandbox.kubeconfig_path)
    requests = Informer(client, RR)
    executions = Informer(client, WFE)
    tracker = Tracker(requests)
    informers = [asyncio.create_task(requests.run()), asyncio.create_task(executions.run())]
    try:
        await _seed_failed_executions(client)
        orchestrator = stack.orchestrator().start()
        await asyncio.to_thread(orchestrator.wait_ready, 60)
        await requests.wait_for_sync()
        stored = signal_when_stored(requests, REQUESTS)
        cpu_before = _cpu_seconds(orchestrator)

        # 1 routing
        limit = asyncio.Semaphore(CONCURRENCY)

        async def create(i: int) -> None:
            async with limit:
                await client.create(RR, _request(i))

        started = time.time()
        await asyncio.gather(*(create(i) for i in range(REQUESTS)))
        created = time.time()
        await asyncio.wait_for(stored.wait(), 60)
        await asyncio.wait_for(tracker.all_routed.wait(), 600)
        routed = max(when for when, _ in tracker.routed.values())
        routing_cpu = _cpu_seconds(orchestrator) - cpu_before
        await _drain(sandbox, [USERS["orchestrator"]])  # follow-up writes (duplicateCount) and queued Events
        quiet = time.time()
        records = await sandbox.admin.aio.audit(user=USERS["orchestrator"])
        reads = Counter(r.verb for r in records if r.verb in ("get", "list"))
        conflicts = sum(1 for r in records if r.code == 409)
        writes = _writes_by_decision(records, tracker)
        routing_reconciles = _samples(orchestrator, "reconcile_total")

        # 2 settling
        executor = stack.executor().start()
        stack.tekton(duration=1.0).start()
        await asyncio.to_thread(executor.wait_ready, 60)
        settle_started = time.time()
        while not await _settled(tracker, executions, orchestrator):
            if time.time() - settle_started > 900:
                raise AssertionError("not settled after 900 s (a request stuck without a live cause?)")
            await asyncio.sleep(0.5)
        settle_seconds = time.time() - settle_started
        phases = Counter(_final(o) for o in requests.store.list())

        drain_started = time.time()
        drained = await _drain(sandbox, [USERS["orchestrator"], USERS["executor"]])
        drain_seconds = time.time() - drain_started
        reconciles = _samples(orchestrator, "reconcile_total")
        events = _samples(orchestrator, "kube_events_total")

        lifetime = _lifetime_writes(await sandbox.admin.aio.audit(user=USERS["orchestrator"]), requests)

        # 3 idle
        idle = await _idle(sandbox, {"orchestrator": orchestrator, "executor": executor})
    finally:
        for task in informers:
            task.cancel()
        await asyncio.gather(*informers, return_exceptions=True)
        await client.close()

    plain, originals = writes["executed"], writes.get("executed/with-duplicates")
    return {
        "requests": REQUESTS,
        "routing": {
            "create_seconds": round(created - started, 3),
            "first_create_to_all_routed_seconds": round(routed - started, 3),
            "creation_done_to_all_routed_seconds": round(routed - created, 3),
            "requests_per_second": round(REQUESTS / (routed - started), 1),
            "orchestrator_cpu_seconds": round(routing_cpu, 2),
            "first_create_to_orchestrator_quiet_seconds": round(quiet - started, 3),
            "orchestrator_reads": dict(reads),
            "conflicts_409": conflicts,
            "reconciles": routing_reconciles,
            "writes": writes,
        },
        "settling": {
            "seconds": round(settle_seconds, 2),
            "final_phases": dict(sorted(phases.items())),
            "lifetime_status_writes_per_request": lifetime,
            "reconciles": reconciles,
            "orchestrator_events": events,
            "then_draining": {"seconds": round(drain_seconds, 2), "requests": dict(drained)},
        },
        "idle": idle,
        "targets": {
            "executed_at_most_2_writes_before_the_run": plain["writes_per_request"] <= 2,
            "originals_at_most_one_more_per_duplicate": originals is None
            or originals["status_writes_beyond_one"] <= originals["duplicates"],
            "idle_no_requests": idle["orchestrator"]["api_requests_besides_watches"] == 0,
        },
    }


async def run() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as directory,
        sandbox_process(
            namespaces=(*NAMESPACES, SYSTEM_NAMESPACE, EXECUTION_NAMESPACE), bookmark_interval=60.0
        ) as sandbox,
    ):
        stack = Stack(sandbox.kubeconfig_for, Path(directory))
        try:
            return await _measure(sandbox, stack)
        finally:
            stack.stop()
