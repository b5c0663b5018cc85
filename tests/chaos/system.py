"""The system under chaos: two orchestrators and two executors with leader election, and the Tekton simulator, as
child processes against one sandbox; plus what watches them from outside (metrics scrapes, unexpected exits).

Every replica's `blocked_expiry_lag_seconds` histogram lives in its process and dies with it, so the scraper reads
each replica every few seconds and right before the harness kills it, and keeps the last reading of every
incarnation (name + start count); the run's histogram is the sum over incarnations.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sandbox.stack import Component, ProcessFailed, Stack
from sandbox.testing import SandboxHandle

LAG_METRIC = "kubernaut_remediationorchestrator_blocked_expiry_lag_seconds"
# Cooldowns and backoff of seconds, not minutes, so that time-based blocks begin and end within a run.
# The executor cancels a run Tekton never ends 1 s past its timeout (plan.NEVER_STARTS), and runs only the load's
# bundles.
EXECUTOR_SETTINGS = {"timeout_grace": "1", "allowed_bundles": "registry.example.com/workflows/*"}
ORCHESTRATOR_SETTINGS = {
    "consecutive_failure_threshold": "3",
    "consecutive_failure_cooldown": "8s",
    "recently_remediated_cooldown": "3s",
    "backoff_base": "2s",
    "backoff_max": "6s",
    # Repeats of a signal come seconds apart, their groups further: chains form, trip and end by late recurrence.
    "ineffective_chain_threshold": "3",
    "ineffective_window": "10s",
}


@dataclass
class Histogram:
    """Cumulative bucket counts (upper bound -> observations at or below it), as Prometheus exposes them."""

    buckets: dict[float, float] = field(default_factory=dict)
    count: float = 0.0
    total: float = 0.0

    def __add__(self, other: Histogram) -> Histogram:
        bounds = set(self.buckets) | set(other.buckets)
        return Histogram(
            {b: self.buckets.get(b, 0.0) + other.buckets.get(b, 0.0) for b in bounds},
            self.count + other.count,
            self.total + other.total,
        )

    def share_at_most(self, bound: float) -> float:
        """The share of observations at or below the bucket bound `bound` (1.0 when there are none)."""
        return self.buckets.get(bound, 0.0) / self.count if self.count else 1.0

    def upper_bound(self) -> float:
        """The smallest bucket bound that holds every observation."""
        return min((b for b, c in self.buckets.items() if c >= self.count), default=0.0)

    def quantile(self, q: float) -> float:
        """Like PromQL's histogram_quantile: linear within the bucket the rank falls into."""
        if not self.count:
            return 0.0
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound in sorted(self.buckets):
            cumulative = self.buckets[bound]
            if cumulative >= rank:
                if bound == float("inf"):
                    return lower
                span = cumulative - below
                return lower + (bound - lower) * ((rank - below) / span if span else 1.0)
            lower, below = bound, cumulative
        return lower


def parse_histogram(text: str, name: str) -> Histogram:
    histogram = Histogram()
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                histogram.buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == f"{name}_count":
                histogram.count = sample.value
            elif sample.name == f"{name}_sum":
                histogram.total = sample.value
    return histogram


@dataclass
class Exit:
    """A process that ended when the harness had not stopped it."""

    name: str
    code: int | None
    at: float


class System:
    """The processes of one run and the harness's hold on them."""

    def __init__(self, sandbox: SandboxHandle, directory: Path, namespaces: Iterable[str], replicas: int = 2) -> None:
        self.sandbox = sandbox
        self.stack = Stack(sandbox.kubeconfig_for, directory)
        watched = ",".join(namespaces)
        common = {"leader_election": "true", "watched_namespaces": watched, "workers": "4"}
        names = "abcdefgh"[:replicas]
        self.orchestrators = [
            self.stack.orchestrator(f"orchestrator-{x}", **common, **ORCHESTRATOR_SETTINGS) for x in names
        ]
        self.executors = [self.stack.executor(f"executor-{x}", **common, **EXECUTOR_SETTINGS) for x in names]
        self.tekton = self.stack.tekton("tekton", duration=1.0)
        self.held: set[str] = set()  # components the harness has stopped on purpose
        self.exits: list[Exit] = []
        self.deaths: dict[str, list[float]] = {}  # component -> when each of its runs was known dead (wall clock)
        self.stopped_at: float | None = None
        self.lag: dict[tuple[str, int], Histogram] = {}
        self._watch_task: asyncio.Task[None] | None = None

    @property
    def controllers(self) -> list[Component]:
        return [*self.orchestrators, *self.executors]

    @property
    def components(self) -> list[Component]:
        return [*self.controllers, self.tekton]

    def replicas(self, kind: str) -> list[Component]:
        return self.orchestrators if kind == "orchestrator" else self.executors

    async def start(self) -> None:
        for component in self.components:
            component.start()
        await asyncio.gather(*(asyncio.to_thread(c.wait_ready, 60.0) for c in self.controllers))
        for kind in ("orchestrator", "executor"):
            await self.leader(kind, timeout=60.0)
        self._watch_task = asyncio.create_task(self._watch(), name="process-watch")

    async def stop(self) -> dict[str, int]:
        """Scrape, then SIGTERM everything; the exit codes."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self.scrape_all()
        codes = await asyncio.to_thread(self.stack.stop)
        self.stopped_at = time.time()
        return codes

    # -- leadership -----------------------------------------------------------------------------------------
    async def is_leader(self, component: Component) -> bool:
        if not component.running:
            return False
        try:
            return await asyncio.to_thread(component.is_leader)
        except OSError:
            return False

    async def leader(self, kind: str, *, timeout: float = 30.0, other_than: Component | None = None) -> Component:
        """The replica of `kind` that leads (waiting up to `timeout` for one)."""
        deadline = time.monotonic() + timeout
        while True:
            for component in self.replicas(kind):
                if component is not other_than and await self.is_leader(component):
                    return component
            if time.monotonic() > deadline:
                raise ProcessFailed(f"no {kind} replica leads after {timeout}s")
            await asyncio.sleep(0.1)

    # -- stopping and starting on purpose -------------------------------------------------------------------
    async def kill(self, component: Component) -> int:
        self.held.add(component.name)
        await self.scrape(component)
        code = await asyncio.to_thread(component.kill)
        self.deaths.setdefault(component.name, []).append(time.time())
        return code

    async def terminate(self, component: Component) -> int:
        self.held.add(component.name)
        await self.scrape(component)
        code = await asyncio.to_thread(component.terminate, 15.0)
        self.deaths.setdefault(component.name, []).append(time.time())
        return code

    async def restart(self, component: Component, *, ready: bool = True) -> None:
        component.start()
        self.held.discard(component.name)
        if ready and component.health_port is not None:
            await asyncio.to_thread(component.wait_ready, 60.0)

    async def ensure_running(self) -> None:
        """Start whatever is down, and wait until every controller is ready and each kind has a leader."""
        for component in self.components:
            if not component.running:
                component.start()
            self.held.discard(component.name)
        await asyncio.gather(*(asyncio.to_thread(c.wait_ready, 60.0) for c in self.controllers))
        for kind in ("orchestrator", "executor"):
            await self.leader(kind, timeout=60.0)

    async def _watch(self) -> None:
        """Note and restart any process that ended by itself (a crash), and scrape the orchestrators."""
        while True:
            await asyncio.sleep(0.5)
            for component in self.components:
                if component.name not in self.held and not component.running and component.process is not None:
                    self.exits.append(Exit(component.name, component.returncode(), time.time()))
                    self.deaths.setdefault(component.name, []).append(self.exits[-1].at)
                    component.start()
            await self.scrape_all()

    # -- metrics --------------------------------------------------------------------------------------------
    async def scrape(self, component: Component) -> None:
        if component not in self.orchestrators or not component.running:
            return
        try:
            text = await asyncio.to_thread(component.metrics)
        except OSError:
            return
        self.lag[(component.name, component.starts)] = parse_histogram(text, LAG_METRIC)

    async def scrape_all(self) -> None:
        await asyncio.gather(*(self.scrape(c) for c in self.orchestrators))

    def lag_histogram(self) -> Histogram:
        total = Histogram()
        for histogram in self.lag.values():
            total = total + histogram
        return total
