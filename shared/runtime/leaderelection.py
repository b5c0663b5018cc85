"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it.

A candidate takes the Lease when it is free, released, or expired; the leader renews it every `retry_period` and
gives up leadership if it cannot renew within `renew_deadline`. Expiry is judged on this process's monotonic clock
from the moment it last saw the Lease change, never by comparing the holder's timestamps with our wall clock (clocks
of two nodes disagree). On graceful shutdown the leader releases the Lease so a standby takes over at once.

Two leaders must never reconcile at once (issue 18.1). A standby counts a Lease as expired `lease_duration` after it
*saw* the last renewal, which is after that renewal's request was *sent*. So the leader keeps, on its monotonic
clock, the moment it started the last attempt that succeeded, and leads only until that moment + `renew_deadline`:
an attempt still in flight then (a slow GET or PUT) is cancelled, never awaited past the deadline, and leadership
ends at once (controllers cancelled before anything else runs). That leaves `lease_duration - renew_deadline`
(5 s by default) between the last moment this process may start a write and the first moment another may lead.
That moment is enforced where a write starts, too: the client refuses a controller's write once `may_write()` is
False, so an event loop blocked past the deadline cannot send one in the turn it resumes (`WRITE_FENCE`).
client-go bounds its renewals the same way (a context with the renew deadline around the retry loop); it measures
from the start of each renew round, we from the start of the last successful attempt, which is stricter.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from shared.apiresource import LEASES
from shared.kubetime import as_utc
from shared.runtime.client import ApiError, KubeClient, retry_on_conflict
from shared.runtime.clock import Clock, RealClock
from shared.runtime.metrics import RuntimeMetrics

log = structlog.get_logger("kubernaut.leaderelection")

Callback = Callable[[], Awaitable[None] | None]
# client-go's defaults: (lease_duration, renew_deadline, retry_period) seconds
DEFAULT_TIMINGS: tuple[float, float, float] = (15.0, 10.0, 2.0)


def default_identity() -> str:
    """Unique per process: the pod's hostname plus a random suffix (a restarted pod is a new candidate)."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _micro_time(clock: Clock) -> str:
    """A `metav1.MicroTime`: UTC and exactly six fractional digits, the only form kube-apiserver reads."""
    return as_utc(clock.now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str | None = None,
        lease_duration: float = DEFAULT_TIMINGS[0],
        renew_deadline: float = DEFAULT_TIMINGS[1],
        retry_period: float = DEFAULT_TIMINGS[2],
        clock: Clock | None = None,
        metrics: RuntimeMetrics | None = None,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("leader election needs lease_duration > renew_deadline > retry_period > 0")
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._client = client
        self._clock = clock or RealClock()
        self._metrics = metrics
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._observed: dict[str, Any] | None = None
        self._observed_at = float("-inf")
        self._resource_version: str | None = None
        self._leading = False
        self._leading_until = float("-inf")  # the last successful renewal's start + renew_deadline (monotonic)
        # Renewals and the release take turns: a release racing an in-flight renewal would lose with a 409 and leave
        # the Lease held, making the standby wait a whole lease duration.
        self._lease_lock = asyncio.Lock()
        self._released = False
        # Each request alone is bounded too (the release, and a campaign's attempts); `run()` bounds renewals tighter.
        self._timeout = aiohttp.ClientTimeout(total=renew_deadline, sock_connect=retry_period)
        self._log = log.bind(lease=f"{namespace}/{name}", identity=self.identity)
        self._set_gauge(0)

    @property
    def is_leader(self) -> bool:
        return self._leading

    def may_write(self) -> bool:
        """Whether a controller's write may start now: leading, and before the last successful renewal's start +
        `renew_deadline` on this process's monotonic clock. Checked by the client just before it sends a write
        (`WRITE_FENCE`): an event loop blocked past that moment (CPU throttling, a long pause) would otherwise let a
        reconcile send a write in the same turn as it resumes, before `run()` can step down, when another replica
        may already lead."""
        return self._leading and self._clock.monotonic() < self._leading_until

    async def run(self) -> None:
        """Campaign, lead, and campaign again after losing the lease, until cancelled or released."""
        while not self._released:
            while True:
                started = self._clock.monotonic()
                if await self._attempt_within(self.renew_deadline):
                    took = self._clock.monotonic() - started
                    if took <= self.renew_deadline - self.retry_period:
                        break
                    # Held, but too slowly to lead for even one retry period: starting the controllers only to
                    # cancel them at once helps no one. The next attempt renews; leading starts on a quick one.
                    self._log.info("leader.acquired_too_slowly", seconds=round(took, 3))
                if self._released:
                    return
                await asyncio.sleep(self.retry_period)
            # The write landed after `started`; a standby's view of it, after that: counting from here is safe.
            renewed_at = started
            self._leading_until = renewed_at + self.renew_deadline
            await self._transition(True)
            while True:
                deadline = self._leading_until
                await asyncio.sleep(max(0.0, min(self.retry_period, deadline - self._clock.monotonic())))
                if self._released:
                    return
                started = self._clock.monotonic()
                if started < deadline and await self._attempt_within(deadline - started):
                    renewed_at = started
                    self._leading_until = renewed_at + self.renew_deadline
                    continue
                # Someone else holds the Lease (edited by hand, or our clock ran slow): they lead now, so stop at
                # once instead of retrying until the deadline.
                taken = self._holder() not in ("", self.identity)
                if taken or self._clock.monotonic() >= deadline:
                    self._log.warning(
                        "leader.lost",
                        reason="taken" if taken else "deadline",
                        holder=self._holder() or None,
                        seconds_since_renewal=round(self._clock.monotonic() - renewed_at, 3),
                        renew_deadline=self.renew_deadline,
                    )
                    break
            await self._transition(False)

    async def _attempt_within(self, seconds: float) -> bool:
        """`try_acquire_or_renew`, cancelled (in-flight request and all) if it takes longer than `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            self._log.info("leader.attempt_timed_out", seconds=round(seconds, 3))
            return False

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; False when someone else holds it or the API is unreachable, and
        always after `release()`."""
        try:
            async with self._lease_lock:
                if self._released:
                    return False
                return await self._try_acquire_or_renew()
        except ApiError as error:
            if not error.conflict and not error.already_exists:
                self._log.info("leader.lease_request_failed", status=error.status, error=error.message)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = _micro_time(self._clock)
        desired: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        try:
            lease = await self._client.request("GET", LEASES.path(self.namespace, self.name), timeout=self._timeout)
        except ApiError as error:
            if not error.not_found:
                raise
            created = await self._client.request(
                "POST",
                LEASES.path(self.namespace),
                body={
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": desired,
                },
                timeout=self._timeout,
            )
            self._observe(created)
            return True

        record = lease.get("spec") or {}
        if record != self._observed:
            self._observe(lease)
        holder = record.get("holderIdentity") or ""
        duration = float(record.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and self._clock.monotonic() < self._observed_at + duration:
            return False
        if holder == self.identity:
            desired["acquireTime"] = record.get("acquireTime", now)
            desired["leaseTransitions"] = record.get("leaseTransitions", 0)
        else:
            desired["leaseTransitions"] = int(record.get("leaseTransitions") or 0) + 1
        updated = await self._client.request(
            "PUT",
            LEASES.path(self.namespace, self.name),
            body={**lease, "spec": {**record, **desired}},
            timeout=self._timeout,
        )
        if holder != self.identity:
            self._log.info("leader.acquired", previous=holder or None, transitions=desired["leaseTransitions"])
        self._observe(updated)
        return True

    def _holder(self) -> str:
        """The holder of the Lease as last seen ("" if none or not seen yet)."""
        return str((self._observed or {}).get("holderIdentity") or "")

    def _observe(self, lease: dict[str, Any]) -> None:
        self._observed = lease.get("spec") or {}
        self._observed_at = self._clock.monotonic()
        self._resource_version = lease.get("metadata", {}).get("resourceVersion")

    async def release(self) -> None:
        """Give the lease up (empty holder) so a standby acquires it at its next retry instead of waiting; this
        candidate stops campaigning for good (it is shutting down)."""
        self._released = True
        if not self._leading:
            return
        await self._transition(False)
        try:
            async with self._lease_lock:  # after a renewal in flight, which would move the Lease on under us
                await retry_on_conflict(self._give_up)
        except ApiError as error:
            self._log.warning("leader.release_failed", status=error.status, error=error.message)

    async def _give_up(self) -> None:
        lease = await self._client.request("GET", LEASES.path(self.namespace, self.name), timeout=self._timeout)
        if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        now = _micro_time(self._clock)
        spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now}
        await self._client.request(
            "PUT", LEASES.path(self.namespace, self.name), body={**lease, "spec": spec}, timeout=self._timeout
        )
        self._log.info("leader.released")

    async def _transition(self, leading: bool) -> None:
        if self._leading == leading:
            return
        self._leading = leading
        self._set_gauge(1 if leading else 0)
        self._log.info("leader.started_leading" if leading else "leader.stopped_leading")
        callback = self._on_started if leading else self._on_stopped
        if callback is not None:
            outcome = callback()
            if outcome is not None:
                await outcome

    def _set_gauge(self, value: int) -> None:
        if self._metrics is not None:
            self._metrics.leader.labels(self.name).set(value)
