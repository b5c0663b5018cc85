"""The orchestrator's metrics (SPEC 4.6), prefix `kubernaut_remediationorchestrator_`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.models import NotificationType

PREFIX = "kubernaut_remediationorchestrator_"
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _CurrentBlocked(Collector):
    """`current_blocked{namespace,reason}` counted from the cache at scrape time, so it is right after a restart."""

    def __init__(self, blocked: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self._blocked = blocked

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{PREFIX}current_blocked", "RemediationRequests Blocked now.", labels=["namespace", "reason"]
        )
        for namespace, reason, count in self._blocked():
            family.add_metric([namespace, reason], count)
        yield family


class OrchestratorMetrics:
    def __init__(self, registry: CollectorRegistry, blocked: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        r = registry
        self.blocked_total = Counter(
            f"{PREFIX}blocked", "Entries into Blocked, by reason.", ["namespace", "reason"], registry=r
        )
        self.blocked_cooldown_expired_total = Counter(
            f"{PREFIX}blocked_cooldown_expired",
            "Time-based blocks that reached blockedUntil.",
            ["namespace", "reason"],
            registry=r,
        )
        self.blocked_expiry_lag_seconds = Histogram(
            f"{PREFIX}blocked_expiry_lag_seconds",
            "How late an expired time-based block was first re-examined after its blockedUntil "
            "(or after this replica began leading).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.routing_decisions_total = Counter(
            f"{PREFIX}routing_decisions",
            "Routing decisions that changed a request, by decision and reason.",
            ["namespace", "decision", "reason"],
            registry=r,
        )
        self.phase_transitions_total = Counter(
            f"{PREFIX}phase_transitions",
            "RemediationRequest phase changes.",
            ["namespace", "from_phase", "to_phase"],
            registry=r,
        )
        self.notification_requests_created_total = Counter(
            f"{PREFIX}notification_requests_created", "NotificationRequests created, by type.", ["type"], registry=r
        )
        for notification_type in NotificationType:  # every series exists from the start, so alerts see the first one
            self.notification_requests_created_total.labels(notification_type.value)
        r.register(_CurrentBlocked(blocked))
