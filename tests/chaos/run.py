"""One chaos run from start to verdict: sandbox, system, recorder, load, faults, drain, final state, checks.

report = await run_chaos(ChaosConfig(seed=7, duration=60, requests=200), directory)
print(report.summary()); assert report.passed
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sandbox.stack import EXECUTION_NAMESPACE, SYSTEM_NAMESPACE
from sandbox.testing import sandbox_process
from shared.apiresource import LEASES
from shared.models import PipelineRun, RemediationRequest, WorkflowExecution
from shared.runtime.client import KubeClient
from tests.chaos.faults import ALL_FAULTS, FaultInjector, FaultRecord, Shutdown
from tests.chaos.invariants import TERMINAL_RR, Check, Evidence, KubeDict, run_checks
from tests.chaos.load import LoadGenerator, Operator
from tests.chaos.plan import plan_load
from tests.chaos.recorder import AuditCollector, Recorder, key_of
from tests.chaos.system import System

RESOURCES = [RemediationRequest.RESOURCE, WorkflowExecution.RESOURCE, PipelineRun.RESOURCE, LEASES]
NAMESPACES = ("chaos-a", "chaos-b")
HISTORY_CAPACITY = 2_000_000  # changes; the recorder re-watches from its last revision, so none may be forgotten


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    duration: float = 60.0  # seconds of load; faults play until it ends (the solo round may run past it)
    requests: int = 200
    faults: tuple[str, ...] = ALL_FAULTS
    solo: tuple[str, ...] = ALL_FAULTS  # kinds first injected alone; the others start the mixed round
    bursts: int = 3
    burst_size: int = 12
    drain_timeout: float = 90.0


@dataclass
class Report:
    config: ChaosConfig
    checks: list[Check]
    faults: list[FaultRecord]
    phases: Counter[str]
    endings: Counter[str]
    shutdowns: list[Shutdown] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    directory: Path | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def summary(self) -> str:
        kinds = Counter(record.kind for record in self.faults)
        mixed = Counter(record.kind for record in self.faults if any(record.overlaps(o) for o in self.faults))
        failed = [record for record in self.faults if record.error]
        passed = sum(check.passed for check in self.checks)
        lines = [
            f"chaos run: seed {self.config.seed}, {self.config.requests} RRs over {self.config.duration:g} s, "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.items()),
            f"faults injected: {len(self.faults)} ({sum(mixed.values())} overlapping others)",
            *(f"  {kind:32} {count:3}  ({mixed[kind]} mixed)" for kind, count in sorted(kinds.items())),
            *(f"  NOT INJECTED {record.kind}: {record.error}" for record in failed),
            f"RRs handled: {sum(self.phases.values())}, by final phase: "
            + ", ".join(f"{phase} {count}" for phase, count in self.phases.most_common()),
            *(f"  {ending:58} {count:4}" for ending, count in sorted(self.endings.items())),
            f"invariant checks: {passed} passed, {len(self.checks) - passed} failed",
            *(f"  {check.line()}" for check in self.checks),
        ]
        if self.directory is not None:
            lines.append(f"logs: {self.directory}")
        return "\n".join(lines)


async def run_chaos(config: ChaosConfig, directory: Path, say: Callable[[str], None] = lambda line: None) -> Report:
    rng = random.Random(config.seed)
    plan = plan_load(
        random.Random(rng.random()),
        requests=config.requests,
        duration=config.duration,
        namespaces=NAMESPACES,
        bursts=config.bursts,
        burst_size=config.burst_size,
    )
    timings: dict[str, float] = {}
    began = time.monotonic()
    with sandbox_process(
        namespaces=(SYSTEM_NAMESPACE, EXECUTION_NAMESPACE, *NAMESPACES), history_capacity=HISTORY_CAPACITY
    ) as sandbox:
        directory.mkdir(parents=True, exist_ok=True)
        system = System(sandbox, directory, NAMESPACES)
        recorder_client = await KubeClient.connect(sandbox.kubeconfig_for("chaos-recorder"), user_agent="recorder")
        load_client = await KubeClient.connect(sandbox.kubeconfig_for("chaos-load"), user_agent="chaos-load")
        operator_client = await KubeClient.connect(sandbox.kubeconfig_for("chaos-operator"), user_agent="operator")
        recorder = Recorder(recorder_client, RESOURCES, since=(await sandbox.admin.aio.state())["resourceVersion"])
        audit = AuditCollector(sandbox.admin.aio)
        injector = FaultInjector(system, random.Random(rng.random()), say, plan=plan)
        load = LoadGenerator(load_client, plan)
        operator = Operator(operator_client, recorder)
        operator_task: asyncio.Task[None] | None = None
        try:
            recorder.start()
            audit.start()
            await system.start()
            timings["start"] = time.monotonic() - began
            say(f"system up in {timings['start']:.1f} s; load of {len(plan.requests)} RRs and faults begin")
            operator_task = asyncio.create_task(operator.run())
            mark = time.monotonic()
            await asyncio.gather(load.run(), injector.play(config.faults, config.duration, config.solo))
            await injector.clear()
            await system.ensure_running()
            timings["load and faults"] = time.monotonic() - mark
            mark = time.monotonic()
            settled = await _drain(recorder, load, config.drain_timeout)
            timings["drain"] = time.monotonic() - mark
            say(f"{'settled' if settled else 'NOT settled'} after {timings['drain']:.1f} s of drain")
            final, checked_at = await _final_state(recorder_client)
        finally:
            if operator_task is not None:
                operator_task.cancel()
            stop_codes = await system.stop()
            await recorder.caught_up((await sandbox.admin.aio.state())["resourceVersion"], timeout=10)
            await recorder.stop()
            await audit.stop()
            for client in (recorder_client, load_client, operator_client):
                await client.close()
    evidence = Evidence(
        plan=plan,
        created=load.created,
        load_failures=load.failures,
        recorder=recorder,
        final=final,
        checked_at=checked_at,
        audit=audit.records,
        audit_missed=audit.missed,
        lag=system.lag_histogram(),
        faults=injector.records,
        shutdowns=injector.shutdowns,
        exits=system.exits,
        stop_codes=stop_codes,
        restarts={component.name: component.starts for component in system.components},
        logs={component.name: component.log_text() for component in system.controllers},
        deaths=system.deaths,
        ended_at=system.stopped_at or time.time(),
    )
    _keep(directory, recorder, final, audit.records, injector.records)
    checks = run_checks(evidence)
    timings["total"] = time.monotonic() - began
    requests = final["remediationrequests"].values()
    return Report(
        config,
        checks,
        injector.records,
        Counter(str((r.get("status") or {}).get("phase") or "unhandled") for r in requests),
        Counter(_ending(r) for r in requests),
        injector.shutdowns,
        timings,
        directory,
    )


def _ending(obj: KubeDict) -> str:
    status = obj.get("status") or {}
    parts = [status.get("phase"), status.get("outcome"), status.get("failurePhase"), status.get("failureReason")]
    if status.get("phase") == "Blocked":
        parts = ["Blocked", status.get("blockReason")]
    return " / ".join(str(part) for part in parts if part)


def _keep(
    directory: Path,
    recorder: Recorder,
    final: dict[str, dict[str, KubeDict]],
    audit: list[Any],
    faults: list[FaultRecord],
) -> None:
    """The evidence as files next to the process logs, for whoever reads a failed run."""
    with (directory / "faults.jsonl").open("wb") as out:
        for record in faults:
            out.write(orjson.dumps(record, default=vars) + b"\n")
    (directory / "final.json").write_bytes(orjson.dumps(final, option=orjson.OPT_INDENT_2))
    with (directory / "changes.jsonl").open("wb") as out:
        for plural in recorder.logs:
            for change in recorder.logs[plural].changes:
                out.write(orjson.dumps({"revision": change.revision, "type": change.type, "object": change.obj}))
                out.write(b"\n")
    with (directory / "audit.jsonl").open("wb") as out:
        for record in audit:
            out.write(orjson.dumps(record.as_json()) + b"\n")


async def _drain(recorder: Recorder, load: LoadGenerator, timeout: float) -> bool:
    """Until every created request is terminal in the recorder's view (or `timeout`)."""
    deadline = time.monotonic() + timeout
    requests = recorder.logs["remediationrequests"]
    while time.monotonic() < deadline:
        current = requests.current
        if all(((current.get(key) or {}).get("status") or {}).get("phase") in TERMINAL_RR for key in load.created):
            return True
        await asyncio.sleep(0.2)
    return False


async def _final_state(client: KubeClient) -> tuple[dict[str, dict[str, KubeDict]], float]:
    checked_at = time.time()
    final = {}
    for resource in RESOURCES[:3]:
        page = await client.list(resource)
        final[resource.plural] = {key_of(item): item for item in page.get("items") or []}
    return final, checked_at
