"""The WorkflowExecution reconciler (SPEC 5): one PipelineRun per WorkflowExecution, followed to its end.

A pure executor: no routing, no counters, no backoff state. Progress comes from PipelineRun watch events; the only
reads that are not from the caches are the GETs that resolve a name collision and the failed TaskRun's details.
Transient API errors raise and are retried with the queue's backoff; they never become a workflow failure.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import structlog

from executor.classify import classify
from executor.metrics import ExecutorMetrics
from executor.pipelinerun import build_pipeline_run, pipeline_run_name, workflow_execution_of
from executor.settings import ExecutorSettings
from executor.validation import spec_problems
from shared.duration import format_duration
from shared.models import (
    ExecutionPhase,
    FailureDetails,
    FailureReason,
    ModelError,
    ObjectReference,
    PipelineRun,
    PipelineRunStatusSummary,
    TaskRun,
    WorkflowExecution,
    WorkflowExecutionStatus,
)
from shared.models._base import ConditionStatus
from shared.models.conditions import set_condition
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.clock import Clock
from shared.runtime.controller import Result
from shared.runtime.events import EventRecorder
from shared.runtime.informer import Informer
from shared.runtime.status import reconcile_latest, update_status
from shared.runtime.store import KubeDict, section

log = structlog.get_logger("kubernaut.executor")

WFE = WorkflowExecution.RESOURCE
PR = PipelineRun.RESOURCE
FINALIZER = "kubernaut.ai/pipelinerun-cleanup"
_TASKS_COMPLETED = re.compile(r"Tasks Completed: (\d+)")
_LOCK_RELEASE_RETRY = 0.5  # seconds before trying to take a lock whose previous PipelineRun is still terminating


class ExecutionReconciler:
    def __init__(
        self,
        client: KubeClient,
        executions: Informer,
        runs: Informer,
        *,
        settings: ExecutorSettings,
        clock: Clock,
        events: EventRecorder,
        metrics: ExecutorMetrics,
    ) -> None:
        self._client = client
        self._executions = executions
        self._runs = runs
        self._settings = settings
        self._clock = clock
        self._events = events
        self._metrics = metrics

    async def reconcile(self, key: str) -> Result:
        return await reconcile_latest(key, self._executions, self._client, self._reconcile)

    async def _reconcile(self, obj: KubeDict) -> Result:
        if obj["metadata"].get("deletionTimestamp"):
            return await self._finalize(obj)
        try:
            wfe = WorkflowExecution.from_k8s(obj)
        except ModelError as error:
            return await self._reject_unparseable(obj, error)
        status = wfe.status.model_copy() if wfe.status else WorkflowExecutionStatus()
        if status.phase is not None and status.phase.terminal:
            return Result.done()
        if status.phase is ExecutionPhase.RUNNING:
            return await self._follow(obj, wfe, status)
        return await self._start(obj, wfe, status)

    # -- starting -------------------------------------------------------------------------------------------
    async def _start(self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus) -> Result:
        now = self._clock.now()
        problems = spec_problems(wfe)
        if problems:
            await self._fail(
                obj,
                wfe,
                status,
                FailureReason.CONFIGURATION_ERROR,
                "invalid spec: " + "; ".join(problems),
                was_execution_failure=False,
                failed_at=now,
            )
            return Result.done()
        obj = await self._ensure_finalizer(obj)
        desired = build_pipeline_run(
            wfe,
            namespace=self._settings.execution_namespace,
            default_service_account=self._settings.default_service_account,
        )
        try:
            run = await self._client.create(PR, desired)
        except ApiError as error:
            if error.already_exists:
                return await self._name_taken(obj, wfe, status, desired)
            refusal = _refusal(error)
            if refusal is None:
                raise
            await self._fail(
                obj,
                wfe,
                status,
                refusal,
                f"the API server refused the PipelineRun: {error.message}",
                was_execution_failure=False,
                failed_at=now,
            )
            return Result.done()
        self._runs.write_through(run)
        self._metrics.pipelinerun_creations_total.inc()
        self._events.event(obj, "Normal", "PipelineRunCreated", f"created PipelineRun {_key(run)}")
        log.info("pipelinerun.created", pipeline_run=_key(run))
        await self._running(obj, wfe, status, run, now)
        return Result.done()

    async def _name_taken(
        self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus, desired: KubeDict
    ) -> Result:
        """The per-target PipelineRun name is taken: adopt ours, take over a finished or orphaned one, or refuse."""
        meta = desired["metadata"]
        try:
            existing = await self._client.get(PR, meta["namespace"], meta["name"])
        except ApiError as error:
            if error.not_found:  # deleted meanwhile: try again at once
                return Result.after(0)
            raise
        owner_key, owner_uid = workflow_execution_of(existing)
        if owner_uid and owner_uid == wfe.metadata.uid:
            self._runs.write_through(existing)
            log.info("pipelinerun.adopted", pipeline_run=_key(existing))
            await self._running(obj, wfe, status, existing, self._clock.now())
            return Result.done()
        finished = _finished(existing)
        owner_live = await self._owner_is_live(owner_key, owner_uid)
        if finished and owner_live:
            # Its execution has not recorded the result yet (the run's end queued it): taking the lock now would make
            # it see its run vanish and fail as 'deleted'. Wait for it.
            log.info("pipelinerun.lock_waits_for_result", pipeline_run=_key(existing), owner=owner_key)
            return Result.after(_LOCK_RELEASE_RETRY)
        if finished or not owner_live:
            try:
                await self._client.delete(
                    PR,
                    meta["namespace"],
                    meta["name"],
                    uid=existing["metadata"].get("uid"),
                    propagation_policy="Background",
                )
            except ApiError as error:
                if not (error.not_found or error.conflict):
                    raise
            log.info("pipelinerun.lock_taken_over", pipeline_run=_key(existing), previous_owner=owner_key)
            return Result.after(_LOCK_RELEASE_RETRY if not finished else 0)
        await self._fail(
            obj,
            wfe,
            status,
            FailureReason.UNKNOWN,
            f"PipelineRun {_key(existing)} is running for WorkflowExecution {owner_key} on the same target "
            f"{wfe.spec.target_resource}; refusing to start a second run",
            was_execution_failure=False,
            failed_at=self._clock.now(),
        )
        return Result.done()

    async def _owner_is_live(self, key: str | None, uid: str | None) -> bool:
        if not key:
            return False
        owner = self._executions.store.get(key)
        if owner is None:
            namespace, _, name = key.rpartition("/")
            try:
                owner = await self._client.get(WFE, namespace or None, name)
            except ApiError as error:
                if error.not_found:
                    return False
                raise
        if uid and owner["metadata"].get("uid") != uid:
            return False
        phase = section(owner, "status").get("phase")
        return phase not in (ExecutionPhase.COMPLETED, ExecutionPhase.FAILED) and not owner["metadata"].get(
            "deletionTimestamp"
        )

    async def _ensure_finalizer(self, obj: KubeDict) -> KubeDict:
        finalizers = obj["metadata"].get("finalizers") or []
        if FINALIZER in finalizers:
            return obj
        return await self._set_finalizers(obj, [*finalizers, FINALIZER])

    async def _set_finalizers(self, obj: KubeDict, finalizers: list[str]) -> KubeDict:
        meta = obj["metadata"]
        version = meta.get("resourceVersion")
        updated = await self._client.patch(
            WFE,
            meta.get("namespace"),
            meta["name"],
            {"metadata": {"finalizers": finalizers, "resourceVersion": version}},
        )
        self._executions.write_through(updated, replaces=version)
        return updated

    async def _running(
        self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus, run: KubeDict, now: datetime
    ) -> None:
        status.phase = ExecutionPhase.RUNNING
        status.observed_generation = wfe.metadata.generation
        status.pipeline_run_ref = ObjectReference(
            kind=PR.kind, name=run["metadata"]["name"], namespace=run["metadata"]["namespace"]
        )
        status.conditions = set_condition(
            status.conditions,
            "PipelineRunCreated",
            "True",
            "Created",
            f"PipelineRun {_key(run)}",
            now,
            wfe.metadata.generation,
        )
        self._observe_progress(status, run, now, wfe.metadata.generation)
        await self._write(obj, status)

    # -- following ------------------------------------------------------------------------------------------
    async def _follow(self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus) -> Result:
        now = self._clock.now()
        ref = status.pipeline_run_ref
        namespace = (ref.namespace if ref else None) or self._settings.execution_namespace
        name = ref.name if ref else pipeline_run_name(wfe.spec.target_resource)
        run = await self._own_run(namespace, name, wfe)
        if run is None:
            started = status.start_time is not None
            await self._fail(
                obj,
                wfe,
                status,
                FailureReason.UNKNOWN,
                f"PipelineRun {namespace}/{name} was deleted while the workflow was "
                f"{'running' if started else 'starting'}",
                was_execution_failure=started,
                failed_at=now,
            )
            return Result.done()
        condition = self._observe_progress(status, run, now, wfe.metadata.generation)
        if condition is None or condition.get("status") not in ("True", "False"):
            await self._write(obj, status)
            return Result.done()
        pipeline_run = _parse_run(run)
        completion = (pipeline_run.status.completion_time if pipeline_run and pipeline_run.status else None) or now
        if condition["status"] == "True":
            status.phase = ExecutionPhase.COMPLETED
            status.completion_time = completion
            if status.start_time:
                status.duration = format_duration(completion - status.start_time)
            await self._write(obj, status)
            self._record_end("Completed", status)
            self._events.event(obj, "Normal", "WorkflowCompleted", f"PipelineRun {namespace}/{name} succeeded")
            return Result.done()
        children = (pipeline_run.status.child_references if pipeline_run and pipeline_run.status else None) or []
        result = classify(
            condition.get("reason"),
            condition.get("message"),
            started=status.start_time is not None,
            has_task_runs=any(c.kind in (None, "TaskRun") for c in children),
        )
        await self._fail(
            obj,
            wfe,
            status,
            result.reason,
            str(condition.get("message") or condition.get("reason") or ""),
            was_execution_failure=result.was_execution_failure,
            failed_at=completion,
            failed_task=await self._failed_task(namespace, children),
        )
        return Result.done()

    async def _own_run(self, namespace: str, name: str, wfe: WorkflowExecution) -> KubeDict | None:
        """This WorkflowExecution's PipelineRun, or None once the API server says it is gone. The run cache may lag
        behind the WorkflowExecution cache (absent, or still the previous run on the target), so a miss is asked."""
        key = f"{namespace}/{name}"
        cached = self._runs.store.get(key)
        if cached is not None and workflow_execution_of(cached)[1] == wfe.metadata.uid:
            return cached
        try:
            run = await self._client.get(PR, namespace, name)
        except ApiError as error:
            if error.not_found:
                return None
            raise
        if workflow_execution_of(run)[1] != wfe.metadata.uid:
            return None
        self._runs.write_through(run, replaces=cached["metadata"].get("resourceVersion") if cached else None)
        return run

    def _observe_progress(
        self, status: WorkflowExecutionStatus, run: KubeDict, now: datetime, generation: int | None
    ) -> dict[str, Any] | None:
        """Copy the PipelineRun's start and Succeeded condition into the status; return the condition."""
        run_status = section(run, "status")
        pipeline_run = _parse_run(run)
        if pipeline_run and pipeline_run.status and pipeline_run.status.start_time:
            status.start_time = status.start_time or pipeline_run.status.start_time
        condition = next(
            (c for c in run_status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Succeeded"),
            None,
        )
        if condition is None:
            return None
        message = str(condition.get("message") or "")
        completed = _TASKS_COMPLETED.search(message)
        tasks = (
            ((run_status.get("pipelineSpec") or {}).get("tasks"))
            if isinstance(run_status.get("pipelineSpec"), dict)
            else None
        )
        status.pipeline_run_status = PipelineRunStatusSummary(
            status=str(condition.get("status")),
            reason=str(condition["reason"])[:1024] if condition.get("reason") else None,  # Tekton's, unbounded
            message=message[:32768] or None,
            completed_tasks=int(completed.group(1)) if completed else None,
            total_tasks=len(tasks) if isinstance(tasks, list) else None,
        )
        state: ConditionStatus = "True" if condition.get("status") == "True" else "Unknown"
        if condition.get("status") == "False":
            state = "False"
        status.conditions = set_condition(
            status.conditions, "Succeeded", state, str(condition.get("reason") or "Running"), message, now, generation
        )
        return condition

    async def _failed_task(self, namespace: str, children: list[Any]) -> tuple[str | None, str | None, int | None]:
        """(task, step, exit code) of the first failed TaskRun that can be read; Nones when none can.

        Raises ApiError on a transient error, so the reconcile is retried rather than the details lost."""
        for child in children:
            if child.kind not in (None, "TaskRun"):
                continue
            try:
                task_run = TaskRun.from_k8s(await self._client.get(TaskRun.RESOURCE, namespace, child.name))
            except (ApiError, ModelError) as error:
                if isinstance(error, ApiError) and error.transient:
                    raise  # a blip is retried, not recorded as "no details"
                log.info("taskrun.unreadable", task_run=child.name, error=str(error))
                continue
            condition = task_run.status.condition() if task_run.status else None
            if condition is None or condition.status != "False":
                continue
            task_name = child.pipeline_task_name or (task_run.metadata.labels or {}).get("tekton.dev/pipelineTask")
            for step in (task_run.status.steps if task_run.status else None) or []:
                if step.terminated and step.terminated.exit_code not in (None, 0):
                    return task_name, step.name, step.terminated.exit_code
            return task_name, None, None
        return None, None, None

    # -- ending ---------------------------------------------------------------------------------------------
    async def _fail(
        self,
        obj: KubeDict,
        wfe: WorkflowExecution,
        status: WorkflowExecutionStatus,
        reason: FailureReason,
        message: str,
        *,
        was_execution_failure: bool,
        failed_at: datetime,
        failed_task: tuple[str | None, str | None, int | None] = (None, None, None),
    ) -> None:
        task, step, exit_code = failed_task
        status.phase = ExecutionPhase.FAILED
        status.completion_time = failed_at
        ran_for = failed_at - status.start_time if status.start_time else None
        if ran_for is not None:
            status.duration = format_duration(max(ran_for, timedelta(0)))
        status.failure_details = FailureDetails(
            reason=reason,
            message=message[:32768],
            failed_task_name=task,
            failed_step_name=step,
            exit_code=exit_code,
            failed_at=failed_at,
            execution_time_before_failure=status.duration if ran_for is not None else None,
            was_execution_failure=was_execution_failure,
        )
        status.conditions = set_condition(
            status.conditions, "Succeeded", "False", reason.value, message, failed_at, wfe.metadata.generation
        )
        await self._write(obj, status)
        self._record_end("Failed", status)
        self._metrics.failures_total.labels(reason.value, str(was_execution_failure).lower()).inc()
        self._events.event(obj, "Warning", "WorkflowFailed", f"{reason.value}: {message}")
        log.info("workflow.failed", reason=reason.value, was_execution_failure=was_execution_failure)

    def _record_end(self, outcome: str, status: WorkflowExecutionStatus) -> None:
        self._metrics.executions_total.labels(outcome).inc()
        if status.start_time and status.completion_time:
            seconds = (status.completion_time - status.start_time).total_seconds()
            self._metrics.execution_duration_seconds.labels(outcome).observe(max(seconds, 0.0))

    async def _write(self, obj: KubeDict, status: WorkflowExecutionStatus) -> None:
        await update_status(
            self._client, self._executions, obj, status.model_dump(mode="json", by_alias=True, exclude_none=True)
        )

    # -- deletion and bad input -----------------------------------------------------------------------------
    async def _finalize(self, obj: KubeDict) -> Result:
        """The WorkflowExecution is being deleted: delete its PipelineRun if it is ours, then let it go."""
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER not in finalizers:
            return Result.done()
        status = section(obj, "status")
        ref = section(status, "pipelineRunRef")
        target = section(obj, "spec").get("targetResource")
        name = ref.get("name") or (pipeline_run_name(target) if isinstance(target, str) else None)
        namespace = ref.get("namespace") or self._settings.execution_namespace
        if name:
            run = self._runs.store.get(f"{namespace}/{name}")
            if run is not None and workflow_execution_of(run)[1] == meta.get("uid"):
                try:
                    await self._client.delete(PR, namespace, name, uid=run["metadata"].get("uid"))
                    log.info("pipelinerun.deleted", pipeline_run=f"{namespace}/{name}")
                except ApiError as error:
                    if not (error.not_found or error.conflict):
                        raise
        await self._set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
        return Result.done()

    async def _reject_unparseable(self, obj: KubeDict, error: ModelError) -> Result:
        """A WorkflowExecution that breaks the schema cannot run: fail it (ConfigurationError), naming the fields."""
        status = section(obj, "status")
        if status.get("phase") in (ExecutionPhase.COMPLETED, ExecutionPhase.FAILED):
            return Result.done()
        message = "invalid WorkflowExecution: " + "; ".join(error.problems)
        log.warning("wfe.invalid", problems=error.problems)
        now = self._clock.now()
        details = FailureDetails(
            reason=FailureReason.CONFIGURATION_ERROR,
            message=message[:32768],
            failed_at=now,
            was_execution_failure=False,
        )
        patch = {
            "phase": ExecutionPhase.FAILED.value,
            "completionTime": details.model_dump(mode="json", by_alias=True)["failedAt"],
            "failureDetails": details.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        await update_status(self._client, self._executions, obj, {**status, **patch})
        self._metrics.executions_total.labels("Failed").inc()
        self._metrics.failures_total.labels(FailureReason.CONFIGURATION_ERROR.value, "false").inc()
        self._events.event(obj, "Warning", "WorkflowFailed", message)
        return Result.done()


def _key(obj: KubeDict) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def _finished(run: KubeDict) -> bool:
    status = section(run, "status")
    return any(
        isinstance(c, dict) and c.get("type") == "Succeeded" and c.get("status") in ("True", "False")
        for c in status.get("conditions") or []
    )


def _parse_run(run: KubeDict) -> PipelineRun | None:
    try:
        return PipelineRun.from_k8s(run)
    except ModelError as error:
        log.info("pipelinerun.unparseable", error=str(error))
        return None


def _refusal(error: ApiError) -> FailureReason | None:
    """A creation refusal that retrying will not fix, as a failure reason; None for transient errors."""
    message = error.message.lower()
    if error.status == 403:
        return FailureReason.RESOURCE_EXHAUSTED if "quota" in message else FailureReason.FORBIDDEN
    if error.status in (400, 422):
        return FailureReason.CONFIGURATION_ERROR
    return None
