"""The manager wires one process: informers, controllers, leader election, Events, probes and metrics.

Start-up order matters for correctness: informers run at once (also on a standby, so failover is immediate), but
controllers start only when every informer has synced *and* this replica leads, because a decision made on a
half-filled cache (say, a duplicate not yet seen) would be wrong. Shutdown (SIGTERM) lets in-flight reconciles
finish, releases the Lease, and returns.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import structlog
import uvloop
from prometheus_client import CollectorRegistry

from shared.apiresource import ApiResource
from shared.runtime.client import KubeClient
from shared.runtime.clock import Clock, RealClock
from shared.runtime.controller import Controller, Reconcile
from shared.runtime.events import EventRecorder
from shared.runtime.informer import Informer
from shared.runtime.leaderelection import DEFAULT_TIMINGS, LeaderElector
from shared.runtime.logging import configure_logging
from shared.runtime.metrics import RuntimeMetrics
from shared.runtime.server import PortUnavailable, ProbeServer
from shared.runtime.workqueue import WorkQueue
from shared.settings import ControllerSettings, SettingsProblem, load_settings, setting_names

log = structlog.get_logger("kubernaut.manager")

S = TypeVar("S", bound=ControllerSettings)
SHUTDOWN_RECONCILE_GRACE = 6.0  # seconds in-flight reconciles get on SIGTERM; the whole shutdown stays under 10 s


class Manager:
    def __init__(
        self,
        client: KubeClient,
        settings: ControllerSettings,
        *,
        component: str,
        metrics_prefix: str,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        lease_name: str | None = None,
        lease_timings: tuple[float, float, float] | None = None,
    ) -> None:
        """`lease_timings`: (lease_duration, renew_deadline, retry_period) seconds; default client-go's 15/10/2
        (`DEFAULT_TIMINGS`)."""
        self.client = client
        self.settings = settings
        self.component = component
        self.clock = clock or RealClock()
        self.metrics = RuntimeMetrics(metrics_prefix, registry)
        self.events = EventRecorder(client, component, clock=self.clock, metrics=self.metrics)
        self.server = ProbeServer(
            self.metrics.registry,
            bind_address=settings.bind_address,
            health_port=settings.health_port,
            metrics_port=settings.metrics_port,
            clock=self.clock,
        )
        self.informers: list[Informer] = []
        self.controllers: list[Controller] = []
        self.elector: LeaderElector | None = None
        lease_duration, renew_deadline, retry_period = lease_timings or DEFAULT_TIMINGS
        if settings.leader_election_enabled():
            self.elector = LeaderElector(
                client,
                namespace=settings.resolved_lease_namespace(),
                name=lease_name or str(getattr(settings, "lease_name", component)),
                clock=self.clock,
                metrics=self.metrics,
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
                on_started_leading=self._start_controllers,
                on_stopped_leading=self._stop_controllers_now,
            )
        self._shutting_down = False
        self._synced = False
        self.server.add_readiness_check("informers-synced", lambda: self.has_synced)
        self.server.add_readiness_check("not-shutting-down", lambda: not self._shutting_down)

    @property
    def has_synced(self) -> bool:
        """Every informer has listed once (a standby has synced too)."""
        return self._synced

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def informer(self, resource: ApiResource, **options: Any) -> Informer:
        """A new informer; namespaced resources are limited to the watched namespaces unless told otherwise."""
        if resource.namespaced and "namespaces" not in options:
            options["namespaces"] = self.settings.watched_namespaces or None
        informer = Informer(self.client, resource, metrics=self.metrics, clock=self.clock, **options)
        self.informers.append(informer)
        return informer

    def controller(
        self,
        name: str,
        reconcile: Reconcile,
        *,
        workers: int | None = None,
        resync: Callable[[], Iterable[str]] | None = None,
    ) -> Controller:
        queue = WorkQueue(name, clock=self.clock, metrics=self.metrics)
        controller = Controller(
            name,
            reconcile,
            queue,
            workers=workers or self.settings.workers,
            metrics=self.metrics,
            clock=self.clock,
            resync=resync,
            fence=self.elector.may_write if self.elector is not None else None,
        )
        self.controllers.append(controller)
        return controller

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down gracefully."""
        await self.server.start()
        background = [
            asyncio.create_task(informer.run(), name=f"informer-{informer.resource.plural}")
            for informer in self.informers
        ]
        background.append(asyncio.create_task(self.events.run(), name="event-recorder"))
        log.info("manager.started", ports=self.server.bound_ports, leader_election=self.elector is not None)
        try:
            if await self._wait_for_sync(stop):
                if self.elector is not None:
                    background.append(asyncio.create_task(self.elector.run(), name="leader-election"))
                else:
                    self._start_controllers()
                await stop.wait()
        finally:
            await self._shutdown(background)

    async def _wait_for_sync(self, stop: asyncio.Event) -> bool:
        synced: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(i.wait_for_sync() for i in self.informers))
        )
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        await asyncio.wait({synced, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not synced.done():
            synced.cancel()
            await asyncio.gather(synced, return_exceptions=True)
            return False
        self._synced = True
        log.info("manager.informers_synced", objects={i.resource.plural: len(i.store) for i in self.informers})
        return True

    def _start_controllers(self) -> None:
        if self._shutting_down:
            return
        for controller in self.controllers:
            controller.start()

    async def _stop_controllers_now(self) -> None:
        # Leadership lost: another replica may lead soon, so stop at once rather than finish. Every worker is
        # cancelled before this yields (gather would let a worker run one more step first), then awaited.
        for controller in self.controllers:
            controller.halt()
        await asyncio.gather(*(c.stop(graceful=False) for c in self.controllers))

    async def _shutdown(self, background: list[asyncio.Task[Any]]) -> None:
        self._shutting_down = True
        log.info("manager.shutting_down")
        await asyncio.gather(*(c.stop(graceful=True, timeout=SHUTDOWN_RECONCILE_GRACE) for c in self.controllers))
        if self.elector is not None:
            await self.elector.release()
        await self.events.flush(timeout=1.0)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self.server.stop()
        log.info("manager.stopped")


def run_controller_process(
    prog: str,
    settings_cls: type[S],
    argv: list[str] | None,
    setup: Callable[[Manager, S], object],
    *,
    metrics_prefix: str,
) -> int:
    """The whole life of a controller process: settings, logging, client, manager, signals. Returns the exit code."""
    try:
        settings = load_settings(settings_cls, sys.argv[1:] if argv is None else argv, prog)
    except SettingsProblem as problem:
        print(f"{prog}: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level, process=prog)
    # Everything imported so far (pydantic schemas, kubernetes-asyncio's models, aiohttp) lives as long as the
    # process: keep it out of the collector's full scans, which otherwise walk it again and again while a burst
    # allocates (issue 14; the cache itself holds bytes, which the collector does not track).
    gc.freeze()
    # uvloop (libuv) instead of asyncio's selector loop: the same asyncio API with its transports, timers and
    # polling in C; about a tenth of a controller's CPU per item goes with it (issue 14, README "Design decisions").
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_serve(prog, settings, setup, metrics_prefix))


async def _serve(prog: str, settings: S, setup: Callable[[Manager, S], object], metrics_prefix: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        client = await KubeClient.connect(settings.kubeconfig, user_agent=prog)
    except Exception as error:  # no usable kubeconfig: say which and stop
        print(f"{prog}: cannot load the Kubernetes configuration: {error}", file=sys.stderr)
        return 1
    try:
        manager = Manager(client, settings, component=prog, metrics_prefix=metrics_prefix)
        setup(manager, settings)
        await manager.run(stop)
    except PortUnavailable as error:  # a busy port is a setting to change, not a crash: one line, no traceback
        named = " / ".join(setting_names(type(settings), name) for name in error.settings)
        print(f"{prog}: cannot listen on {error.address}:{error.port} set by {named}: {error.reason}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0
