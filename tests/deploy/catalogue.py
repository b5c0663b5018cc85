"""The metric families both processes export (SPEC 4.6 and 5), what the alerts, the dashboard and their tests name."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from executor.metrics import ExecutorMetrics
from orchestrator.dryrun import DRY_RUN_DECISION
from orchestrator.metrics import OrchestratorMetrics
from orchestrator.routing import Verdict
from shared.models import BlockReason, NotificationType, SkipReason
from shared.models.workflowexecution import FailureReason
from shared.runtime.metrics import RuntimeMetrics

ORCH = "kubernaut_remediationorchestrator_"
WFE = "kubernaut_workflowexecution_"

# Every metric family the processes export (SPEC 4.6 and 5; orchestrator/metrics.py, executor/metrics.py,
# shared/runtime/metrics.py): name -> (type, labels). prometheus_client exports a counter `x` as `x_total`.
RUNTIME = {  # shared/runtime/metrics.py, under each process's prefix
    "informer_relists": ("counter", {"resource"}),
    "informer_watch_restarts": ("counter", {"resource", "reason"}),
    "informer_watch_expired": ("counter", {"resource"}),
    "informer_events": ("counter", {"resource", "type"}),
    "leader_election_is_leader": ("gauge", {"lease"}),
    "reconcile": ("counter", {"result"}),
    "reconcile_duration_seconds": ("histogram", set()),
    "kube_events": ("counter", {"outcome"}),
}
WORKQUEUE = {  # client-go's names, no prefix, label `name` (the controller)
    "workqueue_depth": ("gauge", {"name"}),
    "workqueue_adds": ("counter", {"name"}),
    "workqueue_queue_duration_seconds": ("histogram", {"name"}),
    "workqueue_work_duration_seconds": ("histogram", {"name"}),
    "workqueue_retries": ("counter", {"name"}),
    "workqueue_unfinished_work_seconds": ("gauge", {"name"}),
    "workqueue_longest_running_processor_seconds": ("gauge", {"name"}),
}
ORCHESTRATOR = {
    "blocked": ("counter", {"namespace", "reason"}),
    "current_blocked": ("gauge", {"namespace", "reason"}),
    "blocked_cooldown_expired": ("counter", {"namespace", "reason"}),
    "blocked_expiry_lag_seconds": ("histogram", set()),
    "routing_decisions": ("counter", {"namespace", "decision", "reason"}),
    "phase_transitions": ("counter", {"namespace", "from_phase", "to_phase"}),
    "notification_requests_created": ("counter", {"type"}),
}
EXECUTOR = {
    "pipelinerun_creations": ("counter", set()),
    "executions": ("counter", {"outcome"}),
    "execution_duration_seconds": ("histogram", {"outcome"}),
    "failures": ("counter", {"reason", "was_execution_failure"}),
}
FAMILIES = {
    **WORKQUEUE,
    **{ORCH + name: family for name, family in {**RUNTIME, **ORCHESTRATOR}.items()},
    **{WFE + name: family for name, family in {**RUNTIME, **EXECUTOR}.items()},
}
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
SERIES = {
    name + suffix: labels | ({"le"} if suffix == "_bucket" else set())
    for name, (kind, labels) in FAMILIES.items()
    for suffix in SERIES_SUFFIXES[kind]
}
# The orchestrator's own families, whose label values are the routing enums below (not the runtime's, whose `reason`
# says why a watch restarted).
ROUTING_SERIES = {ORCH + name + suffix for name, (kind, _) in ORCHESTRATOR.items() for suffix in SERIES_SUFFIXES[kind]}
SYNTHETIC = {"up": set()}  # written by Prometheus for every target
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
# Label values we can check: the enums the orchestrator's labels are made of.
ENUM_VALUES = {
    "decision": {v.value for v in Verdict} | {DRY_RUN_DECISION},  # a dry run is counted as decision DryRun
    "reason": {v.value for v in (*BlockReason, *SkipReason, *FailureReason)},
    "type": {v.value for v in NotificationType},
}


def exported_families() -> dict[str, tuple[str, set[str]]]:
    """The families both processes' registries really export, with one child per labelled metric to show labels."""
    families = {}
    for prefix, own in (
        (ORCH, lambda registry: OrchestratorMetrics(registry, blocked=lambda: [("ns", "ConsecutiveFailures", 1)])),
        (WFE, ExecutorMetrics),
    ):
        runtime = RuntimeMetrics(prefix)
        for holder in (runtime, own(runtime.registry)):
            for metric in vars(holder).values():
                if isinstance(metric, MetricWrapperBase) and metric._labelnames:  # a child makes labels visible
                    metric.labels(*["x"] * len(metric._labelnames))
        for family in runtime.registry.collect():
            families[family.name] = (family.type, {label for s in family.samples for label in s.labels} - {"le"})
    return families
