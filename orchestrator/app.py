"""Wiring of the orchestrator process: informers and their indexes, the event handlers, the controller.

Handlers only enqueue keys. They are where "event-driven, no polling" lives: a WorkflowExecution ending, vanishing
or being acknowledged queues the requests blocked on it; a request ending or vanishing queues its duplicates.
"""

from __future__ import annotations

from orchestrator.metrics import OrchestratorMetrics
from orchestrator.reconciler import RemediationReconciler
from orchestrator.settings import OrchestratorSettings
from orchestrator.view import (
    RR_DUPLICATE_OF,
    RR_INDEXERS,
    WFE_INDEXERS,
    blocked_counts,
    execution_from,
    index_duplicate_of,
    owner_of,
    request_from,
    resync_order,
)
from shared.models import RemediationRequest, WorkflowExecution
from shared.runtime.informer import EventHandler
from shared.runtime.manager import Manager
from shared.runtime.store import KubeDict, object_key

CONTROLLER = "remediationrequest"


def setup(manager: Manager, settings: OrchestratorSettings) -> RemediationReconciler:
    requests = manager.informer(RemediationRequest.RESOURCE, indexers=RR_INDEXERS)
    executions = manager.informer(WorkflowExecution.RESOURCE, indexers=WFE_INDEXERS)
    metrics = OrchestratorMetrics(manager.metrics.registry, blocked=lambda: blocked_counts(requests.store))
    reconciler = RemediationReconciler(
        manager.client,
        requests,
        executions,
        settings=settings,
        clock=manager.clock,
        events=manager.events,
        metrics=metrics,
    )
    controller = manager.controller(CONTROLLER, reconciler.reconcile, resync=lambda: resync_order(requests.store))
    enqueue = controller.enqueue
    reconciler.enqueue = enqueue
    reconciler.started_at = lambda: controller.started_at

    def duplicates_of(key: str) -> None:
        for duplicate in requests.store.index_keys(RR_DUPLICATE_OF, key):
            enqueue(duplicate)

    def request_changed(old: KubeDict | None, new: KubeDict) -> None:
        key = object_key(new)
        enqueue(key)
        for original in {*index_duplicate_of(new), *(index_duplicate_of(old) if old else [])}:
            enqueue(original)  # its duplicateCount
        if not request_from(new).live:
            # On the state, not on a live -> terminal transition: the status we wrote is written through into the
            # cache, so the watch event of that write arrives with `old` already terminal.
            duplicates_of(key)

    def request_deleted(obj: KubeDict) -> None:
        duplicates_of(object_key(obj))  # they route afresh
        for original in index_duplicate_of(obj):
            enqueue(original)

    requests.add_event_handler(
        EventHandler(
            on_add=lambda obj: request_changed(None, obj),
            on_update=request_changed,
            on_delete=request_deleted,
        )
    )

    def execution_added(obj: KubeDict) -> None:
        execution = execution_from(obj)
        pending = reconciler.view.uncertain.get(str((obj.get("spec") or {}).get("targetResource")))
        if pending is not None and pending.key == execution.key:
            del reconciler.view.uncertain[str(obj["spec"]["targetResource"])]
        execution_changed(None, obj)

    def execution_changed(old: KubeDict | None, new: KubeDict) -> None:
        owner = owner_of(new)
        if owner:
            enqueue(owner)
        if old is None:
            return
        before, after = execution_from(old), execution_from(new)
        if (before.live and not after.live) or (after.acknowledged and not before.acknowledged):
            reconciler.enqueue_waiting_on(after.key)

    def execution_deleted(obj: KubeDict) -> None:
        owner = owner_of(obj)
        if owner:
            enqueue(owner)
        reconciler.enqueue_waiting_on(execution_from(obj).key)

    executions.add_event_handler(
        EventHandler(on_add=execution_added, on_update=execution_changed, on_delete=execution_deleted)
    )
    return reconciler
