"""Kubernetes Events (core/v1), recorded the way client-go's EventRecorder does it, but never in a reconcile's way.

- `event()` only queues; background writers write. A full queue or an API error drops the Event (counted), it never
  fails or slows the reconcile that recorded it. Each object's Events go to one of a few writers (by object), so
  they stay in order and aggregate correctly while a burst of Events about many objects is written in parallel.
- Repeats of the same (object, type, reason, message) within ten minutes patch `count` and `lastTimestamp` of the
  first Event instead of creating new ones.
- A per-object token bucket (burst 25, one more every 5 minutes) stops a hot loop from flooding the API.
- The Event's name is `<object>.<hex nanoseconds>`, as client-go names it; for an object name too long for that
  (over 236 characters) the object part is cut and a hash of the whole name appended, so the name stays unique per
  object, a valid DNS subdomain, and within 253 characters (issue 17.7: such Events were refused with 422).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from shared.apiresource import EVENTS
from shared.kubetime import format_time
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.clock import Clock, RealClock
from shared.runtime.metrics import RuntimeMetrics

log = structlog.get_logger("kubernaut.events")

EventType = Literal["Normal", "Warning"]
KubeDict = dict[str, Any]
NAME_MAX = 253  # an Event's name is a DNS subdomain
NAME_HASH_CHARS = 16


def event_name(object_name: str, stamp_ns: int) -> str:
    """The name of a new Event about `object_name` (a DNS subdomain): `<object>.<hex stamp>` when that fits, else
    the object name cut short, `-`, and the first 16 hex of its sha256, then the stamp."""
    suffix = f".{stamp_ns:x}"
    if len(object_name) + len(suffix) <= NAME_MAX:
        return object_name + suffix
    digest = hashlib.sha256(object_name.encode()).hexdigest()[:NAME_HASH_CHARS]
    keep = NAME_MAX - len(suffix) - len(digest) - 1
    # A cut may end on '.' or '-'; neither may precede the '-' (a label must end alphanumeric).
    prefix = object_name[:keep].rstrip(".-")
    return f"{prefix}-{digest}{suffix}" if prefix else f"{digest}{suffix}"


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    first_timestamp: str
    last_seen: float


@dataclass
class _Bucket:
    tokens: float
    updated: float


class EventRecorder:
    def __init__(
        self,
        client: KubeClient,
        component: str,
        *,
        instance: str | None = None,
        clock: Clock | None = None,
        metrics: RuntimeMetrics | None = None,
        queue_size: int = 1000,
        writers: int = 4,
        burst: int = 25,
        refill_seconds: float = 300.0,
        aggregate_seconds: float = 600.0,
        cache_size: int = 4096,
    ) -> None:
        self.component = component
        self.instance = instance or component
        self._client = client
        self._clock = clock or RealClock()
        self._metrics = metrics
        self._queues: list[asyncio.Queue[tuple[KubeDict, EventType, str, str, str]]] = [
            asyncio.Queue(max(1, queue_size // writers)) for _ in range(writers)
        ]
        self._burst = burst
        self._refill_seconds = refill_seconds
        self._aggregate_seconds = aggregate_seconds
        self._cache_size = cache_size
        self._series: OrderedDict[tuple[str, ...], _Series] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def event(self, involved: KubeDict, type_: EventType, reason: str, message: str) -> None:
        """Record an Event about `involved` (an object as the API returns it). Never raises, never waits."""
        meta = involved.get("metadata") or {}
        object_id = str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")
        if not self._take_token(object_id):
            self._count("dropped_spam")
            return
        reference = {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        queue = self._queues[hash(object_id) % len(self._queues)]
        try:
            queue.put_nowait(({k: v for k, v in reference.items() if v}, type_, reason, message[:1024], object_id))
        except asyncio.QueueFull:
            self._count("dropped_full")

    def _take_token(self, object_id: str) -> bool:
        now = self._clock.monotonic()
        bucket = self._buckets.get(object_id)
        if bucket is None:
            bucket = self._buckets[object_id] = _Bucket(float(self._burst), now)
            if len(self._buckets) > self._cache_size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(object_id)
            bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.updated) / self._refill_seconds)
            bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def run(self) -> None:
        """Write queued Events until cancelled."""
        await asyncio.gather(*(self._writer(queue) for queue in self._queues))

    async def _writer(self, queue: asyncio.Queue[tuple[KubeDict, EventType, str, str, str]]) -> None:
        while True:
            reference, type_, reason, message, object_id = await queue.get()
            try:
                await self._write(reference, type_, reason, message, object_id)
            except ApiError as error:
                self._count("failed")
                log.warning("event.write_failed", reason=reason, status=error.status, error=error.message)
            except Exception:
                self._count("failed")
                log.exception("event.write_failed", reason=reason)
            finally:
                queue.task_done()

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until queued Events are written; for shutdown and tests."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(queue.join() for queue in self._queues)), timeout)

    async def _write(self, reference: KubeDict, type_: EventType, reason: str, message: str, object_id: str) -> None:
        now = self._clock.now()
        key = (object_id, type_, reason, message)
        series = self._series.get(key)
        mono = self._clock.monotonic()
        if series is not None and mono - series.last_seen < self._aggregate_seconds:
            try:
                await self._client.patch(
                    EVENTS,
                    series.namespace,
                    series.name,
                    {"count": series.count + 1, "lastTimestamp": format_time(now)},
                )
                series.count += 1
                series.last_seen = mono
                self._series.move_to_end(key)
                self._count("aggregated")
                return
            except ApiError as error:
                if not error.not_found:
                    raise
        namespace = reference.get("namespace") or "default"
        stamp = format_time(now.replace(microsecond=0))
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(str(reference.get("name") or "object"), time.time_ns()),
                "namespace": namespace,
            },
            "involvedObject": reference,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
        }
        created = await self._client.create(EVENTS, body, namespace)
        self._series[key] = _Series(created["metadata"]["name"], namespace, 1, stamp, mono)
        if len(self._series) > self._cache_size:
            self._series.popitem(last=False)
        self._count("created")

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.events_emitted.labels(outcome).inc()
