"""Controllers and the Tekton simulator in the test's own event loop, against a sandbox.

One way to run them for every suite (orchestrator, executor, simulator): a `Manager` wired by the process's own
`setup`, exactly as `python -m orchestrator` / `python -m executor` wire it, minus the process around it. Each
connects with the kubeconfig of its ServiceAccount user (`sandbox.stack.USERS`), so the audit log says who did what.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sandbox.tekton import TektonSimulator
from shared.runtime.client import KubeClient
from shared.runtime.manager import Manager
from shared.settings import ControllerSettings
from tests.integration.helpers import eventually

S = TypeVar("S", bound=ControllerSettings)
SHUTDOWN_TIMEOUT = 15.0

# Settings every in-loop controller needs: free ports, no Lease.
IN_LOOP_SETTINGS: dict[str, Any] = {
    "bind_address": "127.0.0.1",
    "metrics_port": 0,
    "health_port": 0,
    "leader_election": False,
}


@dataclass
class InLoopController:
    """A controller's Manager running as a task of this loop."""

    manager: Manager
    client: KubeClient
    prefix: str
    stop: asyncio.Event
    task: asyncio.Task[None]

    def metric(self, name: str, **labels: str) -> float:
        """A sample of one of the controller's own metrics (`name` without the prefix); 0 when absent."""
        value = self.manager.metrics.registry.get_sample_value(f"{self.prefix}{name}", labels)
        return value or 0.0

    async def shutdown(self) -> None:
        """Stop as SIGTERM would (in-flight reconciles finish); again is a no-op."""
        if self.stop.is_set():
            return
        self.stop.set()
        await asyncio.wait_for(self.task, SHUTDOWN_TIMEOUT)
        await self.client.close()


async def start_in_loop(
    kubeconfig: Path,
    settings: S,
    setup: Callable[[Manager, S], object],
    *,
    component: str,
    prefix: str,
) -> InLoopController:
    """Wire a Manager with `setup`, run it, and return once its controllers run (informers synced); with leader
    election, once its informers have synced (it may stay a standby)."""
    client = await KubeClient.connect(kubeconfig, user_agent=component)
    manager = Manager(client, settings, component=component, metrics_prefix=prefix)
    setup(manager, settings)
    stop = asyncio.Event()
    running = InLoopController(manager, client, prefix, stop, asyncio.create_task(manager.run(stop)))
    if settings.leader_election_enabled():
        await eventually(lambda: manager.has_synced, what=f"{component} to sync")
    else:
        await eventually(lambda: all(c.running for c in manager.controllers), what=f"{component} to start")
    return running


Start = Callable[..., Awaitable[InLoopController]]


@asynccontextmanager
async def starter(
    kubeconfig: Path,
    settings_class: type[S],
    setup: Callable[[Manager, S], object],
    *,
    component: str,
    prefix: str,
    defaults: dict[str, Any],
) -> AsyncIterator[Start]:
    """A `start(**overrides)` that runs a controller in this loop with `defaults` plus the overrides; every controller
    it started is shut down on exit. Fixtures of each suite are built on it."""
    running: list[InLoopController] = []

    async def start(**overrides: Any) -> InLoopController:
        settings = settings_class(**{**IN_LOOP_SETTINGS, **defaults, **overrides})
        controller = await start_in_loop(kubeconfig, settings, setup, component=component, prefix=prefix)
        running.append(controller)
        return controller

    try:
        yield start
    finally:
        for controller in running:
            await controller.shutdown()


@dataclass
class InLoopSimulator:
    """The Tekton simulator (`sandbox.tekton`) running as a task of this loop."""

    simulator: TektonSimulator
    client: KubeClient
    task: asyncio.Task[None]
    stopped: bool = False

    async def stop(self) -> None:
        """Stop it at once, as a killed process would stop (its timers are lost; the API keeps the state)."""
        if self.stopped:
            return
        self.stopped = True
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.close()


async def start_simulator(kubeconfig: Path, namespaces: list[str], *, duration: float = 0.2) -> InLoopSimulator:
    """Start a simulator for `namespaces` (runs last `duration` seconds unless SIM_DURATION says otherwise)."""
    client = await KubeClient.connect(kubeconfig, user_agent="kubernaut-tekton-simulator")
    simulator = TektonSimulator(client, namespaces=namespaces, duration=duration)
    task = asyncio.create_task(simulator.run())
    await eventually(lambda: simulator.controller.running or task.done(), what="the simulator to start")
    if task.done():
        await client.close()
        task.result()  # raises what stopped it
    return InLoopSimulator(simulator, client, task)
