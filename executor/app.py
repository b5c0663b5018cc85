"""Wiring of the executor process: WorkflowExecution and PipelineRun informers, handlers, the controller."""

from __future__ import annotations

import structlog

from executor.allowlist import ENV_BUNDLES
from executor.metrics import ExecutorMetrics
from executor.pipelinerun import LABEL_WORKFLOW_EXECUTION, workflow_execution_of
from executor.reconciler import ExecutionReconciler
from executor.settings import ExecutorSettings
from shared.models import PipelineRun, WorkflowExecution
from shared.runtime.informer import EventHandler
from shared.runtime.manager import Manager
from shared.runtime.store import KubeDict, object_key

CONTROLLER = "workflowexecution"
log = structlog.get_logger("kubernaut.executor")


def setup(manager: Manager, settings: ExecutorSettings) -> ExecutionReconciler:
    if settings.allowed_bundles is None:
        # Whoever can create a RemediationRequest can then run any bundle as the runner's ServiceAccount.
        log.warning(
            "executor.bundles_unrestricted",
            setting=ENV_BUNDLES,
            message="any execution bundle may run; set the patterns of the bundles you trust",
        )
    log.info(
        "executor.allowlists",
        allowed_bundles=settings.allowed_bundles,
        allowed_service_accounts=settings.service_accounts(),
    )
    executions = manager.informer(WorkflowExecution.RESOURCE)
    # Only our PipelineRuns, only in the execution namespace: progress arrives as watch events.
    runs = manager.informer(
        PipelineRun.RESOURCE, namespaces=[settings.execution_namespace], label_selector=LABEL_WORKFLOW_EXECUTION
    )
    reconciler = ExecutionReconciler(
        manager.client,
        executions,
        runs,
        settings=settings,
        clock=manager.clock,
        events=manager.events,
        metrics=ExecutorMetrics(manager.metrics.registry),
    )
    controller = manager.controller(CONTROLLER, reconciler.reconcile, resync=executions.store.keys)
    enqueue = controller.enqueue

    def execution_changed(obj: KubeDict) -> None:
        enqueue(object_key(obj))

    def run_changed(obj: KubeDict) -> None:
        key, _ = workflow_execution_of(obj)
        if key:
            # A run's progress goes ahead of new executions: a burst of new work must not delay recording an end.
            enqueue(key, urgent=True)

    executions.add_event_handler(
        EventHandler(on_add=execution_changed, on_update=lambda _, new: execution_changed(new))
    )
    runs.add_event_handler(
        EventHandler(on_add=run_changed, on_update=lambda _, new: run_changed(new), on_delete=run_changed)
    )
    return reconciler
