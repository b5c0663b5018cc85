"""The WorkflowExecution reconciler (SPEC 5): one PipelineRun per WorkflowExecution, followed to its end.

A pure executor: no routing, no counters, no backoff state. Progress comes from PipelineRun watch events; the only
reads that are not from the caches are the GETs that resolve a name collision and the failed TaskRun's details.
Transient API errors raise and are retried with the queue's backoff; they never become a workflow failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from executor import follow
from executor.allowlist import allowlist_problems
from executor.classify import was_execution_failure
from executor.follow import Child, RunView, read_run
from executor.metrics import ExecutorMetrics
from executor.pipelinerun import (
    ANNOTATION_WORKFLOW_EXECUTION,
    ANNOTATION_WORKFLOW_EXECUTION_UID,
    build_pipeline_run,
    pipeline_run_name,
    run_service_account,
    workflow_execution_of,
)
from executor.settings import ExecutorSettings
from executor.validation import spec_problems
from shared.duration import parse_duration
from shared.kubetime import format_time, parse_time
from shared.models import (
    ExecutionPhase,
    FailureDetails,
    FailureReason,
    ModelError,
    ObjectReference,
    PipelineRun,
    TaskRun,
    WorkflowExecution,
    WorkflowExecutionStatus,
)
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

    def _deadline(self, obj: KubeDict, wfe: WorkflowExecution) -> datetime | None:
        """When the executor ends the execution itself: its creation + executionConfig.timeout + the grace left to
        Tekton's own timeout. None without a timeout."""
        config = wfe.spec.execution_config
        created = obj["metadata"].get("creationTimestamp")
        if config is None or not config.timeout or not isinstance(created, str):
            return None
        try:
            return (
                parse_time(created) + parse_duration(config.timeout) + timedelta(seconds=self._settings.timeout_grace)
            )
        except (ValueError, OverflowError):
            return None

    # -- starting -------------------------------------------------------------------------------------------
    async def _start(self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus) -> Result:
        now = self._clock.now()
        problem = self._refusal_of(wfe)
        if problem:
            await self._fail(
                obj,
                wfe,
                status,
                FailureReason.CONFIGURATION_ERROR,
                problem,
                was_execution_failure=False,
                failed_at=now,
            )
            return Result.done()
        deadline = self._deadline(obj, wfe)
        if deadline is not None and now >= deadline:
            lock = pipeline_run_name(wfe.spec.target_resource)
            run = await self._own_run(self._settings.execution_namespace, lock, wfe)
            if run is not None:  # created before, its record lost: follow it (its end, or the deadline) from here
                await self._running(obj, wfe, status, run, now)
                return Result.after(0)
            return await self._expire(obj, wfe, status, None, now)
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
                await self._not_created_yet(obj, wfe, status, error, now)
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
        return _until(deadline)

    def _refusal_of(self, wfe: WorkflowExecution) -> str | None:
        """Why this execution may not run (ConfigurationError, nothing ran): a spec that cannot run, or a bundle or
        ServiceAccount outside the allowlists; None when it may."""
        invalid = spec_problems(wfe)
        if invalid:
            return "invalid spec: " + "; ".join(invalid)
        refused = allowlist_problems(
            wfe.spec.workflow_ref.execution_bundle,
            run_service_account(wfe, self._settings.default_service_account),
            bundles=self._settings.allowed_bundles,
            service_accounts=self._settings.service_accounts(),
        )
        return "not allowed to run: " + "; ".join(refused) if refused else None

    async def _not_created_yet(
        self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus, error: ApiError, now: datetime
    ) -> None:
        """A create that failed and will be retried shows on the execution at once (condition PipelineRunCreated
        False, a Warning Event with the API's message), not only after the queue's backoff has grown: the same
        failure again writes nothing, so the retries stay quiet."""
        message = f"creating PipelineRun {self._settings.execution_namespace}/"
        message += f"{pipeline_run_name(wfe.spec.target_resource)} failed ({error.status} {error.reason}): "
        message += f"{error.message}; retrying with backoff"
        existing = next((c for c in status.conditions or [] if c.type == follow.CONDITION_CREATED), None)
        if existing is not None and existing.status == "False" and existing.message == message[: follow.MAX_MESSAGE]:
            return
        status.phase = status.phase or ExecutionPhase.PENDING
        status.observed_generation = wfe.metadata.generation
        status.conditions = set_condition(
            status.conditions, follow.CONDITION_CREATED, "False", "CreateFailed", message, now, wfe.metadata.generation
        )
        log.warning("pipelinerun.create_failed", status=error.status, reason=error.reason, error=error.message)
        self._events.event(obj, "Warning", "PipelineRunCreateFailed", message)
        try:
            await self._write(obj, status)
        except ApiError as write_error:  # the create's error is the one retried; this one is only logged
            log.info("wfe.status_write_failed", status=write_error.status, error=write_error.message)

    async def _name_taken(
        self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus, desired: KubeDict
    ) -> Result:
        """The per-target PipelineRun name is taken: adopt ours, take over a finished or orphaned one of ours, or
        refuse (live for another execution, or not ours at all)."""
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
            deadline = self._deadline(obj, wfe)
            return _until(deadline)
        if not owner_key or not owner_uid:
            # Not created by the executor: someone else's run at our lock name. Never deleted nor taken over.
            log.warning("pipelinerun.foreign", pipeline_run=_key(existing))
            await self._fail(
                obj,
                wfe,
                status,
                FailureReason.UNKNOWN,
                f"PipelineRun {_key(existing)} holds this target's lock name but was not created by the executor "
                f"for a WorkflowExecution (no {ANNOTATION_WORKFLOW_EXECUTION} and "
                f"{ANNOTATION_WORKFLOW_EXECUTION_UID} annotations); it is left alone, nothing was run",
                was_execution_failure=False,
                failed_at=self._clock.now(),
            )
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

    async def _owner_is_live(self, key: str, uid: str) -> bool:
        owner = self._executions.store.get(key)
        if owner is None:
            namespace, _, name = key.rpartition("/")
            try:
                owner = await self._client.get(WFE, namespace or None, name)
            except ApiError as error:
                if error.not_found:
                    return False
                raise
        if owner["metadata"].get("uid") != uid:
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
            follow.CONDITION_CREATED,
            "True",
            "Created",
            f"PipelineRun {_key(run)}",
            now,
            wfe.metadata.generation,
        )
        follow.observe(status, read_run(run), now, wfe.metadata.generation)
        await self._write(obj, status)

    # -- following ------------------------------------------------------------------------------------------
    async def _follow(self, obj: KubeDict, wfe: WorkflowExecution, status: WorkflowExecutionStatus) -> Result:
        now = self._clock.now()
        ref = status.pipeline_run_ref
        namespace = (ref.namespace if ref else None) or self._settings.execution_namespace
        name = ref.name if ref else pipeline_run_name(wfe.spec.target_resource)
        run = await self._own_run(namespace, name, wfe)
        if run is None:
            started = follow.has_started(status)
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
        view = read_run(run)
        for problem in view.problems:
            log.warning("pipelinerun.status_unreadable", pipeline_run=f"{namespace}/{name}", problem=problem)
        follow.observe(status, view, now, wfe.metadata.generation)
        if not view.finished:
            deadline = self._deadline(obj, wfe)
            if deadline is not None and now >= deadline:
                return await self._expire(obj, wfe, status, run, now)
            await self._write(obj, status)
            return _until(deadline)
        completion = view.completion_time or now
        if view.state == "True":
            self._warn_times(follow.complete(status, completion), f"{namespace}/{name}")
            await self._write(obj, status)
            self._record_end("Completed", status)
            self._events.event(obj, "Normal", "WorkflowCompleted", f"PipelineRun {namespace}/{name} succeeded")
            return Result.done()
        reason, was_execution_failure, message = follow.run_failure(view, status)
        await self._fail(
            obj,
            wfe,
            status,
            reason,
            message,
            was_execution_failure=was_execution_failure,
            failed_at=completion,
            failed_task=await self._failed_task(namespace, view.children),
        )
        return Result.done()

    async def _expire(
        self,
        obj: KubeDict,
        wfe: WorkflowExecution,
        status: WorkflowExecutionStatus,
        run: KubeDict | None,
        now: datetime,
    ) -> Result:
        """The execution's own deadline passed: cancel its run (Tekton's spec.status Cancelled) and fail it
        DeadlineExceeded, so a run Tekton never starts or never ends cannot hold its target."""
        timeout = wfe.spec.execution_config.timeout if wfe.spec.execution_config else None
        view: RunView | None = read_run(run) if run is not None else None
        if run is not None:
            await self._cancel(run)
        ran = (view is not None and view.started) or follow.has_started(status)
        what = "did not finish" if ran else "did not start"
        message = f"the workflow {what} within its timeout {timeout} (deadline {format_time(now)})"
        message += f"; PipelineRun {_key(run)} was cancelled" if run is not None else "; no PipelineRun was created"
        await self._fail(
            obj,
            wfe,
            status,
            FailureReason.DEADLINE_EXCEEDED,
            message,
            was_execution_failure=was_execution_failure(FailureReason.DEADLINE_EXCEEDED, started=ran),
            failed_at=now,
        )
        return Result.done()

    async def _cancel(self, run: KubeDict) -> None:
        if _finished(run) or section(run, "spec").get("status") == "Cancelled":
            return
        meta = run["metadata"]
        try:
            updated = await self._client.patch(PR, meta["namespace"], meta["name"], {"spec": {"status": "Cancelled"}})
        except ApiError as error:
            if error.not_found:
                return
            raise
        self._runs.write_through(updated, replaces=meta.get("resourceVersion"))
        log.info("pipelinerun.cancelled", pipeline_run=_key(run))

    def _warn_times(self, warning: str | None, run: str) -> None:
        if warning:
            log.warning("pipelinerun.times_out_of_order", pipeline_run=run, problem=warning)

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

    async def _failed_task(
        self, namespace: str, children: tuple[Child, ...]
    ) -> tuple[str | None, str | None, int | None]:
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
        warning = follow.fail(
            status,
            reason,
            message,
            was_execution_failure=was_execution_failure,
            failed_at=failed_at,
            generation=wfe.metadata.generation,
            failed_task=failed_task,
        )
        self._warn_times(warning, status.pipeline_run_ref.name if status.pipeline_run_ref else "")
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
            message=message[: follow.MAX_MESSAGE],
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


def _until(deadline: datetime | None) -> Result:
    """Done until something changes, or until the execution's own deadline when it has one."""
    return Result.at(deadline) if deadline is not None else Result.done()


def _finished(run: KubeDict) -> bool:
    return read_run(run).finished


def _refusal(error: ApiError) -> FailureReason | None:
    """A creation refusal that retrying will not fix, as a failure reason; None for transient errors."""
    message = error.message.lower()
    if error.status == 403:
        return FailureReason.RESOURCE_EXHAUSTED if "quota" in message else FailureReason.FORBIDDEN
    if error.status in (400, 422):
        return FailureReason.CONFIGURATION_ERROR
    return None
