"""A Tekton simulator: drives PipelineRuns the way Tekton Pipelines' controller would, without running anything.

It talks to any API server through a kubeconfig (the sandbox, or a real cluster without Tekton) and is built on our
own controller runtime. A PipelineRun says what should happen to it through parameters (which flow from a
RemediationRequest's `spec.parameters` through the WorkflowExecution):

  SIM_OUTCOME      Succeeded (default) | Failed | FailBeforeStart | Hang (starts, never ends) |
                   Ignore (never touched, as if Tekton were down)
  SIM_DURATION     seconds from start to end (default: the simulator's --duration)
  SIM_REASON       the Succeeded condition's reason when failing (Failed / CouldntGetPipeline by default)
  SIM_MESSAGE      its message (Tekton's "Tasks Completed: ..." summary by default)
  SIM_TASKS        how many tasks the pipeline has (default 2)
  SIM_FAILED_TASK  which pipeline task fails (default the last); SIM_FAILED_STEP, SIM_EXIT_CODE: its step and code

Lifecycle: a new run gets a start time, a Running condition and one TaskRun per started task; after SIM_DURATION
(or at `spec.timeouts.pipeline`, whichever is first) it ends Succeeded or Failed, the failing TaskRun carrying the
step's exit code. FailBeforeStart ends the run with no TaskRuns (childReferences) but with a start time, like a
bundle that cannot be resolved: real Tekton sets `startTime` on its first reconcile, before it resolves the pipeline.
A run whose `spec.status` is `Cancelled` ends at once as Tekton ends it: Succeeded False, reason `Cancelled`, its
unfinished TaskRuns failed. Every step is derived from the run's current status plus timers, so a restarted
simulator carries on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from shared.duration import parse_duration
from shared.kubetime import format_time, parse_time
from shared.models import PipelineRun, TaskRun
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.clock import Clock, RealClock
from shared.runtime.controller import Controller, Result
from shared.runtime.informer import EventHandler, Informer
from shared.runtime.logging import configure_logging
from shared.runtime.store import KubeDict, object_key, section, split_key
from shared.runtime.workqueue import WorkQueue

log = structlog.get_logger("kubernaut.tekton-simulator")

PR = PipelineRun.RESOURCE
TR = TaskRun.RESOURCE
SUCCEEDED = "Succeeded"


def _params(run: KubeDict) -> dict[str, str]:
    params = section(run, "spec").get("params") or []
    return {str(p.get("name")): str(p.get("value")) for p in params if isinstance(p, dict)}


def _succeeded(obj: KubeDict) -> dict[str, Any] | None:
    return next(
        (
            c
            for c in section(obj, "status").get("conditions") or []
            if isinstance(c, dict) and c.get("type") == SUCCEEDED
        ),
        None,
    )


def _summary(completed: int, failed: int) -> str:
    return f"Tasks Completed: {completed} (Failed: {failed}, Cancelled 0), Skipped: 0"


class TektonSimulator:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespaces: list[str] | None = None,
        duration: float = 1.0,
        clock: Clock | None = None,
        workers: int = 4,
    ) -> None:
        self._client = client
        self._clock = clock or RealClock()
        self._duration = duration
        self.runs = Informer(client, PR, namespaces=namespaces, clock=self._clock)
        self.controller = Controller(
            "tekton-simulator", self.reconcile, WorkQueue("tekton-simulator", clock=self._clock), workers=workers
        )
        enqueue = self.controller.enqueue
        self.runs.add_event_handler(
            EventHandler(on_add=lambda o: enqueue(object_key(o)), on_update=lambda _, o: enqueue(object_key(o)))
        )

    async def run(self) -> None:
        informer = asyncio.create_task(self.runs.run())
        try:
            await self.runs.wait_for_sync()
            self.controller.start()
            await informer
        finally:
            await self.controller.stop(graceful=False)
            informer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await informer

    async def reconcile(self, key: str) -> Result:
        run = self.runs.store.get(key)
        if run is None or run["metadata"].get("deletionTimestamp"):
            return Result.done()
        condition = _succeeded(run)
        if condition is not None and condition.get("status") in ("True", "False"):
            return Result.done()
        params = _params(run)
        outcome = params.get("SIM_OUTCOME", SUCCEEDED)
        if outcome == "Ignore":
            return Result.done()
        now = self._clock.now()
        status = section(run, "status")
        if section(run, "spec").get("status") == "Cancelled":
            await self._cancel(run, params, now)
            return Result.done()
        if outcome == "FailBeforeStart":
            if not status.get("startTime"):
                await self._patch_run(
                    run,
                    {
                        "startTime": format_time(now),
                        "conditions": [self._condition("Unknown", "Started", "", now)],
                    },
                )
                return Result.done()
            due = parse_time(status["startTime"]) + timedelta(seconds=self._seconds(params))
            if now < due:
                return Result.at(due)
            await self._finish_unstarted(run, params, now)
            return Result.done()
        if not status.get("startTime"):
            await self._start(run, params, now)
            return Result.done()
        if outcome == "Hang":
            return Result.done()
        started = parse_time(status["startTime"])
        due, timed_out = self._end_of(run, params, started)
        if now < due:
            return Result.at(due)
        await self._finish(run, params, outcome, due, timed_out)
        return Result.done()

    def _seconds(self, params: dict[str, str]) -> float:
        try:
            return max(float(params.get("SIM_DURATION", self._duration)), 0.0)
        except ValueError:
            return self._duration

    def _end_of(self, run: KubeDict, params: dict[str, str], started: datetime) -> tuple[datetime, bool]:
        end = started + timedelta(seconds=self._seconds(params))
        limit = section(section(run, "spec"), "timeouts").get("pipeline")
        if isinstance(limit, str):
            with contextlib.suppress(ValueError):
                deadline = started + parse_duration(limit)
                if parse_duration(limit).total_seconds() > 0 and deadline < end:
                    return deadline, True
        return end, False

    @staticmethod
    def _tasks(params: dict[str, str]) -> list[str]:
        try:
            count = max(int(params.get("SIM_TASKS", "2")), 1)
        except ValueError:
            count = 2
        return [f"task-{number}" for number in range(1, count + 1)]

    async def _start(self, run: KubeDict, params: dict[str, str], now: datetime) -> None:
        tasks = self._tasks(params)
        children = [await self._task_run(run, task, now) for task in tasks]
        await self._patch_run(
            run,
            {
                "startTime": format_time(now),
                "conditions": [self._condition("Unknown", "Running", _summary(0, 0), now)],
                "childReferences": children,
                "pipelineSpec": {"tasks": [{"name": task} for task in tasks]},
            },
        )
        log.info("pipelinerun.started", pipeline_run=object_key(run), tasks=len(tasks))

    async def _task_run(self, run: KubeDict, task: str, now: datetime) -> dict[str, Any]:
        meta = run["metadata"]
        name = f"{meta['name']}-{task}"[:253]
        body = {
            "apiVersion": TR.api_version,
            "kind": TR.kind,
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {"tekton.dev/pipelineRun": meta["name"], "tekton.dev/pipelineTask": task},
                "ownerReferences": [
                    {
                        "apiVersion": PR.api_version,
                        "kind": PR.kind,
                        "name": meta["name"],
                        "uid": meta.get("uid"),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"taskRef": {"name": task}},
        }
        with contextlib.suppress(ApiError):
            await self._client.create_or_get(TR, body)
        return {"apiVersion": TR.api_version, "kind": TR.kind, "name": name, "pipelineTaskName": task}

    async def _finish(self, run: KubeDict, params: dict[str, str], outcome: str, at: datetime, timed_out: bool) -> None:
        tasks = self._tasks(params)
        if outcome == SUCCEEDED and not timed_out:
            for task in tasks:
                await self._end_task_run(run, task, "True", SUCCEEDED, at, step=None, exit_code=0)
            condition = self._condition("True", SUCCEEDED, _summary(len(tasks), 0), at)
        else:
            failed = params.get("SIM_FAILED_TASK", tasks[-1])
            step, exit_code = params.get("SIM_FAILED_STEP", "step-run"), int(params.get("SIM_EXIT_CODE", "1") or 1)
            completed = 0
            for task in tasks:
                if task == failed:
                    await self._end_task_run(run, task, "False", "Failed", at, step=step, exit_code=exit_code)
                    break
                await self._end_task_run(run, task, "True", SUCCEEDED, at, step=None, exit_code=0)
                completed += 1
            if timed_out:
                reason = "PipelineRunTimeout"
                message = f"PipelineRun {run['metadata']['name']} failed to finish within its timeout"
            else:
                reason = params.get("SIM_REASON", "Failed")
                message = params.get("SIM_MESSAGE", _summary(completed + 1, 1))
            condition = self._condition("False", reason, message, at)
        await self._patch_run(run, {"completionTime": format_time(at), "conditions": [condition]})
        log.info("pipelinerun.finished", pipeline_run=object_key(run), succeeded=condition["status"])

    async def _cancel(self, run: KubeDict, params: dict[str, str], now: datetime) -> None:
        """Tekton's answer to `spec.status: Cancelled`: the run's unfinished TaskRuns and the run itself fail."""
        name = run["metadata"]["name"]
        children = section(run, "status").get("childReferences") or []
        for child in children:
            task = child.get("pipelineTaskName") if isinstance(child, dict) else None
            if isinstance(task, str):
                await self._end_task_run(run, task, "False", "TaskRunCancelled", now, step=None, exit_code=0)
        condition = self._condition("False", "Cancelled", f'PipelineRun "{name}" was cancelled', now)
        await self._patch_run(run, {"completionTime": format_time(now), "conditions": [condition]})
        log.info("pipelinerun.cancelled", pipeline_run=object_key(run), outcome=params.get("SIM_OUTCOME", SUCCEEDED))

    async def _finish_unstarted(self, run: KubeDict, params: dict[str, str], now: datetime) -> None:
        condition = self._condition(
            "False",
            params.get("SIM_REASON", "CouldntGetPipeline"),
            params.get("SIM_MESSAGE", "invalid bundle reference: could not resolve the pipeline"),
            now,
        )
        await self._patch_run(run, {"completionTime": format_time(now), "conditions": [condition]})
        log.info("pipelinerun.failed_before_start", pipeline_run=object_key(run))

    async def _end_task_run(
        self, run: KubeDict, task: str, state: str, reason: str, at: datetime, *, step: str | None, exit_code: int
    ) -> None:
        name = f"{run['metadata']['name']}-{task}"[:253]
        steps = [
            {
                "name": step or "step-run",
                "container": f"step-{step or 'run'}",
                "terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed"},
            }
        ]
        status = {
            "podName": f"{name}-pod",
            "startTime": section(run, "status").get("startTime"),
            "completionTime": format_time(at),
            "conditions": [
                self._condition(state, reason, f"task {task} {'succeeded' if state == 'True' else 'failed'}", at)
            ],
            "steps": steps,
        }
        with contextlib.suppress(ApiError):
            await self._client.patch(TR, run["metadata"]["namespace"], name, {"status": status}, subresource="status")

    @staticmethod
    def _condition(state: str, reason: str, message: str, at: datetime) -> dict[str, Any]:
        return {
            "type": SUCCEEDED,
            "status": state,
            "reason": reason,
            "message": message,
            "lastTransitionTime": format_time(at),
        }

    async def _patch_run(self, run: KubeDict, status: dict[str, Any]) -> None:
        namespace, name = split_key(object_key(run))
        try:
            await self._client.patch_status(
                PR, namespace, name, status, resource_version=run["metadata"].get("resourceVersion")
            )
        except ApiError as error:
            if not error.not_found:
                raise


async def serve(kubeconfig: Path | None, namespaces: list[str] | None, duration: float) -> None:
    """Run the simulator until SIGINT/SIGTERM."""
    client = await KubeClient.connect(kubeconfig, user_agent="kubernaut-tekton-simulator")
    simulator = TektonSimulator(client, namespaces=namespaces, duration=duration)
    task = asyncio.create_task(simulator.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await asyncio.wait({task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox tekton", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig of the API server to drive")
    parser.add_argument(
        "--namespace", action="append", dest="namespaces", help="watch only this namespace (repeatable)"
    )
    parser.add_argument("--duration", type=float, default=1.0, help="default seconds from start to end of a run")
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    args = parser.parse_args(argv)
    configure_logging(args.log_format, "info", process="tekton-simulator")
    asyncio.run(serve(args.kubeconfig, args.namespaces, args.duration))
    return 0
