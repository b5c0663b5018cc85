"""The executor under a burst: 1 000 WorkflowExecutions on distinct targets created at once, run through the Tekton
simulator. The sandbox runs in its own process, the executor (`python -m executor`) and the
simulator (`python -m sandbox tekton`) as child processes, as in a cluster. Measured with the executor's default
of 4 workers and with 16, each against a fresh sandbox.

Measured from the sandbox's audit log, which records when each write was applied, by whom:
- PipelineRuns created per second: the executor's successful creates over the time from the first to the last.
- Completion to terminal status: for each run, from the simulator's status write that ends the PipelineRun to the
  executor's status write that ends its WorkflowExecution (watch delivery, queue, reconcile and the write itself).
  Target: p99 < 200 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from executor.app import CONTROLLER
from executor.metrics import PREFIX
from executor.pipelinerun import pipeline_run_name
from sandbox.audit import AuditRecord
from sandbox.client import SandboxAdmin
from sandbox.stack import EXECUTION_NAMESPACE, USERS, Stack
from sandbox.testing import sandbox_process
from shared.models import WorkflowExecution
from shared.runtime.client import KubeClient
from shared.runtime.informer import EventHandler, Informer
from shared.runtime.store import KubeDict

EXECUTIONS = 1000
NAMESPACE = "bench"
RUN_SECONDS = 1.0  # how long each simulated PipelineRun runs
CREATE_CONCURRENCY = 50
TARGET_P99_MS = 200.0
WORKERS = (4, 16)  # the default, and more
TIMEOUT = 600.0
WFE = WorkflowExecution.RESOURCE
RECONCILE_SECONDS = f"{PREFIX}reconcile_duration_seconds"


def _execution(index: int) -> KubeDict:
    name = f"wfe-{index:05d}"
    return {
        "apiVersion": WFE.api_version,
        "kind": WFE.kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "remediationRequestRef": {"kind": "RemediationRequest", "name": name, "namespace": NAMESPACE},
            "workflowRef": {"workflowId": "restart-pods", "executionBundle": "registry.example.com/wf/restart:v1"},
            "targetResource": _target(index),
            "parameters": {"SIM_DURATION": str(RUN_SECONDS)},
        },
    }


def _target(index: int) -> str:
    return f"{NAMESPACE}/deployment/app-{index:05d}"


def _last_writes(records: Iterable[AuditRecord], resource: str, subresource: str, verb: str) -> dict[str, float]:
    """name -> time of the last successful matching write."""
    last: dict[str, float] = {}
    for r in records:
        if (r.resource, r.subresource, r.verb) == (resource, subresource, verb) and 200 <= r.code < 300:
            last[r.name] = r.time
    return last


def _mean_ms(metrics: str, histogram: str, **labels: str) -> float:
    """The mean of a histogram in the Prometheus text `metrics`, in milliseconds."""
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name.startswith(histogram) and sample.labels.items() >= labels.items()
    }
    count = values.get(f"{histogram}_count", 0.0)
    return round(values.get(f"{histogram}_sum", 0.0) / count * 1000, 1) if count else 0.0


def _count(metrics: str, histogram: str) -> int:
    return next(
        int(sample.value)
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == f"{histogram}_count"
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


async def _create_all(client: KubeClient, count: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def creator() -> None:
        while not queue.empty():
            await client.create(WFE, _execution(queue.get_nowait()))

    await asyncio.gather(*(creator() for _ in range(CREATE_CONCURRENCY)))


async def _measure(
    kubeconfig_for: Callable[[str], Path], admin: SandboxAdmin, directory: Path, count: int, workers: int
) -> dict[str, Any]:
    stack = Stack(kubeconfig_for, directory)
    executor = stack.executor(WATCHED_NAMESPACES=NAMESPACE, WORKERS=str(workers))
    tekton = stack.tekton(duration=RUN_SECONDS)
    client = await KubeClient.connect(kubeconfig_for(USERS["orchestrator"]), user_agent="benchmark")
    watcher = Informer(client, WFE, namespaces=[NAMESPACE])
    ended: dict[str, str] = {}
    all_ended = asyncio.Event()

    def observe(obj: KubeDict) -> None:
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Completed", "Failed"):
            ended[obj["metadata"]["name"]] = phase
            if len(ended) == count:
                all_ended.set()

    watcher.add_event_handler(EventHandler(on_add=observe, on_update=lambda _, new: observe(new)))
    watching = asyncio.create_task(watcher.run())
    try:
        tekton.start()
        executor.start()
        executor.wait_ready()
        await watcher.wait_for_sync()
        since = admin.state()["auditLastSequence"]
        started = time.time()
        await _create_all(client, count)
        created = time.time()
        await asyncio.wait_for(all_ended.wait(), TIMEOUT)
        finished = time.time()
        metrics = executor.metrics()
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await client.close()
        stack.stop()
    records = admin.audit(since=since)
    creates = sorted(
        r.time
        for r in records
        if r.user == USERS["executor"] and (r.verb, r.resource, r.code) == ("create", "pipelineruns", 201)
    )
    run_ended = _last_writes((r for r in records if r.user == USERS["tekton"]), "pipelineruns", "status", "patch")
    execution_ended = _last_writes((r for r in records if r.user == USERS["executor"]), WFE.plural, "status", "patch")
    delays_ms = [
        (execution_ended[f"wfe-{i:05d}"] - run_ended[pipeline_run_name(_target(i))]) * 1000 for i in range(count)
    ]
    create_window = creates[-1] - creates[0]
    p99 = _percentile(delays_ms, 0.99)
    return {
        "executor_workers": workers,
        "executions": count,
        "completed": sum(1 for phase in ended.values() if phase == "Completed"),
        "pipelinerun_creates": len(creates),
        "create_seconds": round(created - started, 3),
        "pipelineruns_created_per_second": round((len(creates) - 1) / create_window, 1),
        "first_create_to_last_pipelinerun_seconds": round(creates[-1] - started, 3),
        "all_terminal_seconds": round(finished - started, 3),
        "executor": {
            "reconciles": _count(metrics, RECONCILE_SECONDS),
            "reconcile_mean_ms": _mean_ms(metrics, RECONCILE_SECONDS),
            "queue_wait_mean_ms": _mean_ms(metrics, "workqueue_queue_duration_seconds", name=CONTROLLER),
        },
        "completion_to_terminal_ms": {
            "p50": round(statistics.median(delays_ms), 1),
            "p99": round(p99, 1),
            "max": round(max(delays_ms), 1),
            "min": round(min(delays_ms), 1),
        },
        "meets_target": p99 < TARGET_P99_MS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def run(count: int = EXECUTIONS) -> dict[str, Any]:
    """`count` WorkflowExecutions at once through the executor and the simulator; throughput and end latency, with
    the default 4 workers and with 16, each against a fresh sandbox."""
    results: dict[str, Any] = {}
    for workers in WORKERS:
        with (
            sandbox_process(namespaces=(EXECUTION_NAMESPACE, NAMESPACE)) as sandbox,
            tempfile.TemporaryDirectory(prefix="bench-executor-") as directory,
        ):
            results[f"workers_{workers}"] = await _measure(
                sandbox.kubeconfig_for, sandbox.admin, Path(directory), count, workers
            )
    return {
        "executions": count,
        "run_seconds": RUN_SECONDS,
        **results,
        "targets": {"completion_to_terminal_p99_ms": TARGET_P99_MS},
        "cpus": os.cpu_count(),
    }
