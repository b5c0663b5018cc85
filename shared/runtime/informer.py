"""The informer: list, then watch over raw HTTP lines, into an indexed cache (client-go's Reflector + Indexer).

- A consistent list (paged), then a watch from the list's resourceVersion with bookmarks and a server timeout
  randomised between 5 and 10 minutes. A normal close re-watches from the last version seen (bookmarks advance it).
- 410 Gone relists and reconciles the cache with the new list: whatever vanished is deleted, and handlers get a
  delete with the last known object, so no delete is ever missed.
- Connection errors, 429 and 5xx back off (0.8 s doubling to 30 s, jittered, reset after 2 healthy minutes),
  honouring Retry-After.
- A stream with no event and no bookmark for `inactivity_timeout` seconds is abandoned and re-opened: a stalled
  TCP connection would otherwise hang forever, since no client timeout applies to a watch's body. A watch whose
  response does not start within `response_timeout` seconds (a server that accepted and never answers, a
  half-open connection) is abandoned too, with backoff. Both log `informer.watch_stalled` and count a watch restart
  with reason `inactivity`; the next watch resumes from the last version seen (a 410 then relists).
- Lines are split by us and decoded with orjson, so lines of any length work. resourceVersion is opaque.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import structlog

from shared.apiresource import ApiResource
from shared.backoff import Backoff
from shared.runtime.client import RESPONSE_TIMEOUT, ApiError, KubeClient
from shared.runtime.clock import Clock, RealClock
from shared.runtime.metrics import RuntimeMetrics
from shared.runtime.store import Indexer, IndexFunc, KubeDict, ReadOnlyStore, decode, object_key

log = structlog.get_logger("kubernaut.informer")

Transform = Callable[[KubeDict], KubeDict]
RELIST_BACKOFF = Backoff(timedelta(seconds=0.8), timedelta(seconds=30), 2.0, jitter_percent=50)
HEALTHY_RESET = 120.0  # seconds without a failure after which the backoff starts over
# A watch's response (status line, headers) must start within this: a real API server answers at once, or within
# about 3 s when it waits for a resourceVersion it has not seen yet (then 504); 30 s leaves room for a server under
# load (API priority and fairness may queue the request) while a hung one costs at most half a minute of blindness.
WATCH_RESPONSE_TIMEOUT = 30.0
MIN_WATCH_SECONDS = 1.0  # a watch that ends sooner without any event counts as a failure (no hot loop)


def strip_managed_fields(obj: KubeDict) -> KubeDict:
    """Default transform: managedFields are large and never read by a controller."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


@dataclass
class EventHandler:
    """Callbacks run on every change; they should only enqueue keys. Exceptions are logged, never propagated."""

    on_add: Callable[[KubeDict], None] | None = None
    on_update: Callable[[KubeDict, KubeDict], None] | None = None
    on_delete: Callable[[KubeDict], None] | None = None


class _WatchExpired(Exception):
    """The watch's resourceVersion is too old (410): relist."""


class Informer:
    def __init__(
        self,
        client: KubeClient,
        resource: ApiResource,
        *,
        namespaces: Sequence[str] | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: dict[str, IndexFunc] | None = None,
        transform: Transform = strip_managed_fields,
        metrics: RuntimeMetrics | None = None,
        clock: Clock | None = None,
        inactivity_timeout: float = 70.0,
        response_timeout: float = WATCH_RESPONSE_TIMEOUT,
        watch_timeout: tuple[int, int] = (300, 600),
        page_size: int = 500,
        backoff: Backoff = RELIST_BACKOFF,
    ) -> None:
        self.resource = resource
        self._client = client
        self._indexer = Indexer(indexers)
        self._handlers: list[EventHandler] = []
        self._transform = transform
        self._metrics = metrics
        self._clock = clock or RealClock()
        self.inactivity_timeout = inactivity_timeout
        self.response_timeout = response_timeout
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.backoff = backoff
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        self._reflectors = [_Reflector(self, ns, label_selector, field_selector) for ns in scopes]
        self._synced = asyncio.Event()
        self._unannounced: set[str] = set()  # keys whose cached version was written through, not yet dispatched

    # -- public surface -------------------------------------------------------------------------------------
    @property
    def store(self) -> ReadOnlyStore:
        return self._indexer

    def add_event_handler(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    def write_through(self, obj: KubeDict, *, replaces: str | None = None) -> bool:
        """Put an object we just wrote into the cache so the next read sees it before its watch event arrives.

        For a create (`replaces` None) only when the key is absent; for an update only when the cache still holds
        the version the write replaced. Never regresses the cache past a newer watch event. Handlers are not run:
        the watch event that follows runs them (or the relist, if a 410 loses that event), with the written object
        as `old` - so a handler of objects this process writes must act on their state, not on a transition."""
        key = object_key(obj)
        if replaces is None:
            if key in self._indexer:
                return False
        elif self._indexer.resource_version(key) != replaces:
            return False
        self._indexer.upsert(key, self._transform(obj))
        self._unannounced.add(key)
        return True

    async def catch_up(self) -> int:
        """List every scope now and write through what the cache lacks; for a process about to decide on a cache
        whose watch may lag behind (a new leader). Handlers run when the watch delivers those objects. Returns how
        many were added."""
        added = 0
        for reflector in self._reflectors:
            async for page, _ in reflector.pages():
                added += sum(self.write_through(item) for item in page)
        return added

    async def run(self) -> None:
        """List and watch until cancelled."""
        await asyncio.gather(*(reflector.run() for reflector in self._reflectors))

    # -- used by reflectors ---------------------------------------------------------------------------------
    def _reflector_synced(self) -> None:
        if all(r.synced for r in self._reflectors):
            self._synced.set()

    def _dispatch_change(self, old: bytes | None, new: KubeDict) -> None:
        self._unannounced.discard(object_key(new))
        if old is None:
            self._dispatch("on_add", new)
        elif any(h.on_update is not None for h in self._handlers):
            self._dispatch("on_update", decode(old), new)

    def _dispatch(self, kind: str, *args: KubeDict) -> None:
        for handler in self._handlers:
            callback = getattr(handler, kind)
            if callback is None:
                continue
            try:
                callback(*args)
            except Exception:
                log.exception("informer.handler_failed", resource=self.resource.plural, handler=kind)

    def _count(self, counter: str, *labels: str) -> None:
        if self._metrics is not None:
            getattr(self._metrics, counter).labels(self.resource.plural, *labels).inc()


class _Reflector:
    """Keeps one scope (a namespace, or all) of the informer's cache in step with the server."""

    def __init__(
        self, informer: Informer, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> None:
        self._informer = informer
        self._namespace = namespace
        self._selectors = {"labelSelector": label_selector, "fieldSelector": field_selector}
        self._path = informer.resource.path(namespace)
        self.resource_version: str | None = None
        self.synced = False
        self._failures = 0
        self._last_failure = float("-inf")
        self._log = log.bind(resource=informer.resource.plural, namespace=namespace or "*")

    async def run(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                await self._watch()
            except _WatchExpired:
                need_list = True
                await self._failed("expired", gone=True)
            except ApiError as error:
                if error.reason == RESPONSE_TIMEOUT:
                    self._log.warning(
                        "informer.watch_stalled", seconds=self._informer.response_timeout, waiting="response"
                    )
                    await self._failed("inactivity")
                    continue
                need_list = need_list or error.gone
                self._log.warning(
                    "informer.request_failed", status=error.status, reason=error.reason, error=error.message
                )
                await self._failed("error", retry_after=error.retry_after, gone=error.gone)
            except Exception as error:  # a malformed answer must not end the informer: log, back off, go on
                self._log.warning("informer.stream_failed", error=f"{type(error).__name__}: {error}")
                await self._failed("error")

    async def _failed(self, reason: str, *, retry_after: float | None = None, gone: bool = False) -> None:
        informer = self._informer
        now = informer._clock.monotonic()
        if now - self._last_failure > HEALTHY_RESET:
            self._failures = 0
        self._failures += 1
        self._last_failure = now
        informer._count("informer_watch_restarts", reason)
        # The first 410 after a healthy spell relists at once; repeated failures back off.
        if gone and self._failures == 1:
            delay = 0.0
        else:
            delay = informer.backoff.duration(self._failures, seed=str(random.random())).total_seconds()
        delay = max(delay, retry_after or 0.0)
        if delay > 0:
            self._log.info("informer.backing_off", seconds=round(delay, 3), failures=self._failures)
            await asyncio.sleep(delay)

    def pages(self) -> AsyncIterator[tuple[list[KubeDict], str | None]]:
        """One consistent, paged list of this scope (`KubeClient.pages`: type meta filled in, not yet
        transformed; the list's resourceVersion with the last page)."""
        informer = self._informer
        return informer._client.pages(informer.resource, self._namespace, limit=informer.page_size, **self._selectors)

    async def _list_and_replace(self) -> None:
        informer = self._informer
        items: dict[str, KubeDict] = {}
        listed: str | None = None
        async for page, version in self.pages():
            for item in page:
                obj = informer._transform(item)
                items[object_key(obj)] = obj
            listed = version  # the last page's
        self.resource_version = listed
        informer._count("informer_relists")
        self._replace(items)
        if not self.synced:
            self.synced = True
            informer._reflector_synced()
        self._log.info("informer.listed", objects=len(items), resource_version=self.resource_version)

    def _replace(self, items: dict[str, KubeDict]) -> None:
        """Make this scope of the cache equal `items`, telling handlers what changed (deletes included)."""
        informer = self._informer
        indexer = informer._indexer
        namespace = self._namespace
        vanished = [
            key for key in indexer if key not in items and (namespace is None or key.startswith(f"{namespace}/"))
        ]
        for key in vanished:
            informer._unannounced.discard(key)
            last = indexer.delete(key)
            if last is not None:
                informer._dispatch("on_delete", decode(last))
        for key, obj in items.items():
            unchanged = indexer.resource_version(key) == str(obj["metadata"].get("resourceVersion") or "")
            if unchanged and key not in informer._unannounced:
                continue  # unchanged since the handlers last heard of it (a written-through version they have not)
            informer._dispatch_change(indexer.upsert(key, obj), obj)

    async def _watch(self) -> None:
        informer = self._informer
        query = {
            **self._selectors,
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": random.randint(*informer.watch_timeout),
        }
        started = informer._clock.monotonic()
        events = 0
        async with informer._client.stream(
            self._path, query=query, response_timeout=informer.response_timeout
        ) as response:
            buffer = bytearray()
            while True:
                try:
                    async with asyncio.timeout(informer.inactivity_timeout):
                        chunk = await response.content.readany()
                except TimeoutError:
                    self._log.warning("informer.watch_stalled", seconds=informer.inactivity_timeout, waiting="events")
                    informer._count("informer_watch_restarts", "inactivity")
                    return
                if not chunk:
                    break
                buffer += chunk
                start = 0
                with memoryview(buffer) as view:
                    while (end := buffer.find(b"\n", start)) != -1:
                        if end > start:
                            self._handle(orjson.loads(view[start:end]))
                            events += 1
                        start = end + 1
                del buffer[:start]
        if events == 0 and informer._clock.monotonic() - started < MIN_WATCH_SECONDS:
            raise ApiError(0, "WatchClosedEarly", "the watch closed at once without an event")
        informer._count("informer_watch_restarts", "closed")

    def _handle(self, event: dict[str, Any]) -> None:
        informer = self._informer
        kind = event.get("type")
        obj = event.get("object") or {}
        informer._count("informer_events", str(kind))
        if kind == "BOOKMARK":
            self.resource_version = obj.get("metadata", {}).get("resourceVersion") or self.resource_version
            return
        if kind == "ERROR":
            code = obj.get("code", 0)
            if code == 410:
                informer._count("informer_watch_expired")
                raise _WatchExpired(obj.get("message", ""))
            raise ApiError(int(code or 0), str(obj.get("reason", "WatchError")), str(obj.get("message", obj)))
        obj = informer._transform(obj)
        key = object_key(obj)
        self.resource_version = obj["metadata"].get("resourceVersion") or self.resource_version
        indexer = informer._indexer
        if kind == "DELETED":
            indexer.delete(key)
            informer._unannounced.discard(key)
            informer._dispatch("on_delete", obj)
            return
        informer._dispatch_change(indexer.upsert(key, obj), obj)
