"""One small aiohttp server: `/healthz` and `/readyz` on the health port, `/metrics` on the metrics port.

- `/healthz`: the event loop is responsive (a ticker task has run within `max_loop_lag`).
- `/readyz`: every check passes (informers synced; leader or a ready standby; not shutting down). The body lists
  the failing checks, as the API server's own `/readyz?verbose` does.
- `/metrics`: the process's prometheus-client registry.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.runtime.clock import Clock, RealClock

ReadinessCheck = Callable[[], bool]


class PortUnavailable(Exception):
    """A port could not be listened on (in use, not permitted, no such address); `settings` names the settings
    that chose it (`health_port`, `metrics_port`, or both when they share a port)."""

    def __init__(self, settings: list[str], address: str, port: int, error: OSError) -> None:
        self.settings = settings
        self.address = address
        self.port = port
        # asyncio's message repeats the address; the errno's own words are enough beside ours
        self.reason = os.strerror(error.errno).lower() if error.errno else str(error)
        super().__init__(f"cannot listen on {address}:{port} ({', '.join(settings)}): {self.reason}")


class ProbeServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        bind_address: str,
        health_port: int,
        metrics_port: int,
        clock: Clock | None = None,
        tick_interval: float = 1.0,
        max_loop_lag: float = 10.0,
    ) -> None:
        self._registry = registry
        self._bind = bind_address
        self._ports = (health_port, metrics_port)
        self._clock = clock or RealClock()
        self._tick_interval = tick_interval
        self._max_loop_lag = max_loop_lag
        self._checks: dict[str, ReadinessCheck] = {}
        self._last_tick = self._clock.monotonic()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.bound_ports: list[int] = []

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # Both ports serve every path: simple, and a probe pointed at the metrics port still works.
        for port in dict.fromkeys(self._ports):
            try:
                await web.TCPSite(self._runner, self._bind, port, reuse_address=True).start()
            except OSError as error:
                await self._runner.cleanup()
                self._runner = None
                chosen_by = [
                    name for name, p in zip(("health_port", "metrics_port"), self._ports, strict=True) if p == port
                ]
                raise PortUnavailable(chosen_by, self._bind, port, error) from error
        self.bound_ports = [address[1] for address in self._runner.addresses]
        self._ticker = asyncio.create_task(self._tick(), name="loop-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _tick(self) -> None:
        while True:
            self._last_tick = self._clock.monotonic()
            await asyncio.sleep(self._tick_interval)

    async def _healthz(self, _: web.Request) -> web.Response:
        lag = self._clock.monotonic() - self._last_tick
        if lag > self._max_loop_lag:
            return web.Response(status=500, text=f"event loop lagging: last tick {lag:.1f}s ago\n")
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        lines, ready = [], True
        for name, check in self._checks.items():
            passed = check()
            ready = ready and passed
            lines.append(f"[{'+' if passed else '-'}]{name} {'ok' if passed else 'failed'}")
        lines.append("readyz check passed" if ready else "readyz check failed")
        return web.Response(status=200 if ready else 503, text="\n".join(lines) + "\n")

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
