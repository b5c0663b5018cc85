"""Metrics of the runtime itself, registered in the process's own registry.

Work queue series carry client-go's names and a `name` label, so existing dashboards work unchanged. Informer,
leader-election and reconcile series carry the process's prefix (e.g. `kubernaut_remediationorchestrator_`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# client-go: prometheus.ExponentialBuckets(10e-9, 10, 12), 10 ns to 1000 s.
WORKQUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(12))
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RuntimeMetrics:
    def __init__(self, prefix: str, registry: CollectorRegistry | None = None) -> None:
        self.prefix = prefix
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.workqueue_depth = Gauge("workqueue_depth", "Current depth of the work queue.", ["name"], registry=r)
        self.workqueue_adds = Counter("workqueue_adds", "Adds handled by the work queue.", ["name"], registry=r)
        self.workqueue_queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long a key stays in the work queue before it is processed.",
            ["name"],
            buckets=WORKQUEUE_BUCKETS,
            registry=r,
        )
        self.workqueue_work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long processing a key takes.",
            ["name"],
            buckets=WORKQUEUE_BUCKETS,
            registry=r,
        )
        self.workqueue_retries = Counter(
            "workqueue_retries", "Rate-limited re-adds after a failed reconcile.", ["name"], registry=r
        )
        self.workqueue_unfinished_work = Gauge(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress that has not been observed by work_duration; large values mean stuck work.",
            ["name"],
            registry=r,
        )
        self.workqueue_longest_running_processor = Gauge(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest-running processor of the queue has been running.",
            ["name"],
            registry=r,
        )
        self.informer_relists = Counter(
            f"{prefix}informer_relists", "Full lists of a resource (start-up and recovery).", ["resource"], registry=r
        )
        self.informer_watch_restarts = Counter(
            f"{prefix}informer_watch_restarts",
            "Watches re-opened, by why the previous one ended.",
            ["resource", "reason"],
            registry=r,
        )
        self.informer_watch_expired = Counter(
            f"{prefix}informer_watch_expired",
            "Watches that answered 410 Gone (resourceVersion too old), forcing a relist.",
            ["resource"],
            registry=r,
        )
        self.informer_events = Counter(
            f"{prefix}informer_events", "Watch events received.", ["resource", "type"], registry=r
        )
        self.leader = Gauge(
            f"{prefix}leader_election_is_leader", "1 while this replica holds the lease.", ["lease"], registry=r
        )
        self.reconcile_total = Counter(f"{prefix}reconcile", "Reconciles by result.", ["result"], registry=r)
        self.reconcile_duration = Histogram(
            f"{prefix}reconcile_duration_seconds", "Time spent in one reconcile.", buckets=RECONCILE_BUCKETS, registry=r
        )
        self.events_emitted = Counter(
            f"{prefix}kube_events", "Kubernetes Events written, by outcome.", ["outcome"], registry=r
        )
