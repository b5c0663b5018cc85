"""Watches: JSON-lines event streams with the watch cache's semantics.

A watch starts from a resourceVersion: unset or "0" sends the current objects as synthetic ADDED events first
(`sendInitialEvents` adds a BOOKMARK annotated `k8s.io/initial-events-end` after them); "N" replays the kept
history after N, or answers one ERROR event with a 410 Expired Status when N is older than the history.
Filtered watches see an object that stops matching as DELETED (its previous content at the new revision) and one
that starts matching as ADDED. BOOKMARKs come every `bookmark_interval` and 2 s before `timeoutSeconds` ends the
stream, as the real watch cache sends them.

Events are fanned out synchronously when a change commits (one serialisation per change and served version,
shared by all watchers) and written by each watch's own task in batches.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import count
from typing import Any, Final

import orjson
from aiohttp import web

from sandbox.resources import ResourceType
from sandbox.selectors import FieldSelector, LabelSelector
from sandbox.status import ApiError
from sandbox.storage import Change, Storage, StoredObject

INITIAL_EVENTS_END_ANNOTATION: Final = "k8s.io/initial-events-end"
_PRE_DEADLINE_BOOKMARK: Final = 2.0  # seconds before timeoutSeconds ends a watch
_MAX_BUFFERED_EVENTS: Final = 1_000_000  # a watcher this far behind is closed, as the real server does
_ids = count(1)


@dataclass(frozen=True, slots=True)
class WatchQuery:
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    allow_bookmarks: bool
    timeout: float | None
    send_initial_events: bool = False


def event_line(event_type: str, obj: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + obj + b"}\n"


def error_line(error: ApiError) -> bytes:
    return event_line("ERROR", error.body())


class Watcher:
    """One open watch: its filter, its buffer of lines to send, and its timers."""

    def __init__(self, hub: WatchHub, resource: ResourceType, query: WatchQuery, user: str) -> None:
        self.id = next(_ids)
        self.hub = hub
        self.resource = resource
        self.query = query
        self.user = user
        self.started = time.time()
        self.sent_rv = 0
        self.events_sent = 0
        self._lines: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._closing: str | None = None  # "graceful" ends the stream, "abort" drops the connection
        self._transport: asyncio.BaseTransport | None = None
        loop_time = asyncio.get_running_loop().time()
        self._deadline = loop_time + query.timeout if query.timeout is not None else None
        self._next_bookmark: float | None = None
        if query.allow_bookmarks:
            self._next_bookmark = loop_time + hub.bookmark_interval
            if self._deadline is not None and self._deadline - _PRE_DEADLINE_BOOKMARK < self._next_bookmark:
                pre_deadline = self._deadline - _PRE_DEADLINE_BOOKMARK
                self._next_bookmark = pre_deadline if pre_deadline > loop_time else None

    # filling the buffer (synchronous, called when changes commit)

    def _matches(self, obj: StoredObject) -> bool:
        query = self.query
        if query.namespace is not None and obj.namespace != query.namespace:
            return False
        if not query.labels.empty and not query.labels.matches(obj.labels):
            return False
        return query.fields.empty or query.fields.matches(self.resource.fields(obj))

    def offer(self, change: Change) -> None:
        """Queue what this watch shows of a change (nothing, ADDED, MODIFIED or DELETED)."""
        if self._closing is not None:
            return
        now_matches = change.type != "DELETED" and self._matches(change.obj)
        before_matched = change.prev is not None and self._matches(change.prev)
        resource = self.resource
        if now_matches:
            event_type = "MODIFIED" if before_matched else "ADDED"
            line = change.cached(
                (id(resource), event_type), lambda: event_line(event_type, resource.served(change.obj))
            )
        elif before_matched:
            if change.type == "DELETED":
                line = change.cached(
                    (id(resource), "DELETED"), lambda: event_line("DELETED", resource.served(change.obj))
                )
            else:
                assert change.prev is not None
                previous = change.prev
                line = change.cached(
                    (id(resource), "LEFT"),
                    lambda: event_line("DELETED", resource.served(previous.restamped(change.rv))),
                )
        else:
            return
        self._push(line, change.rv)

    def offer_current(self, objects: Iterable[StoredObject]) -> None:
        """Queue synthetic ADDED events for the current state (each object at its own revision)."""
        for obj in objects:
            if self._matches(obj):
                self._push(event_line("ADDED", self.resource.served(obj)), obj.rv)

    def offer_bookmark(self, rv: int, initial_events_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
        body = orjson.dumps({"kind": self.resource.kind, "apiVersion": self.resource.api_version, "metadata": meta})
        self._push(event_line("BOOKMARK", body), rv)

    def _push(self, line: bytes, rv: int) -> None:
        if len(self._lines) >= _MAX_BUFFERED_EVENTS:
            self.close(graceful=True)
            return
        self._lines.append(line)
        self.sent_rv = max(self.sent_rv, rv)
        self._wakeup.set()

    def close(self, graceful: bool) -> None:
        """End the stream: cleanly (as at timeoutSeconds) or by dropping the connection."""
        if self._closing != "abort":
            self._closing = "graceful" if graceful else "abort"
        self._wakeup.set()

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def backlog(self) -> int:
        return len(self._lines)

    # writing (the watch request's task)

    async def stream(self, request: web.Request, response: web.StreamResponse) -> None:
        """Write buffered lines until the watch ends; returns when the stream is over."""
        self._transport = request.transport
        loop = asyncio.get_running_loop()
        while True:
            if self._closing == "abort":
                self._abort()
                return
            if self.hub.hung():
                await self._sleep_until(self.hub.hang_release_time())
                continue
            now = loop.time()
            if self._next_bookmark is not None and now >= self._next_bookmark and not self._lines:
                self.offer_bookmark(max(self.hub.storage.revision, self.sent_rv))
                self._schedule_bookmark(now)
            if self._lines:
                chunk = b"".join(self._lines)
                written = len(self._lines)
                self._lines.clear()
                await response.write(chunk)
                self.events_sent += written
                continue
            if self._closing == "graceful" or (self._deadline is not None and now >= self._deadline):
                await response.write_eof()
                return
            await self._sleep_until(self._next_wake())

    def _next_wake(self) -> float | None:
        times = [t for t in (self._deadline, self._next_bookmark) if t is not None]
        return min(times) if times else None

    def _schedule_bookmark(self, now: float) -> None:
        following = now + self.hub.bookmark_interval
        if self._deadline is not None:
            pre_deadline = self._deadline - _PRE_DEADLINE_BOOKMARK
            if now < pre_deadline < following:
                following = pre_deadline
        self._next_bookmark = following

    async def _sleep_until(self, when: float | None) -> None:
        self._wakeup.clear()
        if self._lines and not self.hub.hung():
            return
        if self._closing is not None and not self.hub.hung():
            return
        try:
            if when is None:
                await self._wakeup.wait()
            else:
                async with asyncio.timeout_at(when):
                    await self._wakeup.wait()
        except TimeoutError:
            pass

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "group": self.resource.group,
            "version": self.resource.version,
            "resource": self.resource.plural,
            "namespace": self.query.namespace or "",
            "labelSelector": ",".join(_describe_labels(self.query.labels)),
            "since": self.started,
            "eventsSent": self.events_sent,
            "backlog": self.backlog,
        }


def _describe_labels(selector: LabelSelector) -> list[str]:
    return [f"{r.key} {r.operator.value} {','.join(r.values)}".strip() for r in selector.requirements]


class WatchHub:
    """Every open watch: fan-out from the storage, and the switches fault injection pulls."""

    def __init__(self, storage: Storage, bookmark_interval: float = 60.0) -> None:
        self.storage = storage
        self.bookmark_interval = bookmark_interval
        self._by_storage: dict[str, set[Watcher]] = {}
        self._hang_until: float | None = None  # loop time; inf while hung until cleared

    def register(self, watcher: Watcher) -> None:
        key = watcher.resource.storage
        if key not in self._by_storage:
            self._by_storage[key] = set()
            self.storage.subscribe(key, self._dispatch)
        self._by_storage[key].add(watcher)

    def unregister(self, watcher: Watcher) -> None:
        self._by_storage.get(watcher.resource.storage, set()).discard(watcher)

    def _dispatch(self, change: Change) -> None:
        for watcher in tuple(self._by_storage.get(change.storage, ())):
            watcher.offer(change)

    def watchers(self) -> list[Watcher]:
        return [watcher for watchers in self._by_storage.values() for watcher in watchers]

    def close_all(self, graceful: bool) -> int:
        """End every open watch; returns how many there were."""
        watchers = self.watchers()
        for watcher in watchers:
            watcher.close(graceful)
        return len(watchers)

    def close_storage(self, storage: str) -> None:
        """End the watches of a resource that stops being served."""
        for watcher in tuple(self._by_storage.get(storage, ())):
            watcher.close(graceful=True)

    def hang(self, seconds: float | None) -> None:
        """Stop writing to every watch (open and new) for `seconds`, or until `release()`."""
        loop_time = asyncio.get_running_loop().time()
        self._hang_until = float("inf") if seconds is None else loop_time + seconds
        for watcher in self.watchers():
            watcher.wake()

    def release(self) -> None:
        self._hang_until = None
        for watcher in self.watchers():
            watcher.wake()

    def hung(self) -> bool:
        if self._hang_until is None:
            return False
        if asyncio.get_running_loop().time() >= self._hang_until:
            self._hang_until = None
            return False
        return True

    def hang_release_time(self) -> float | None:
        if self._hang_until is None or self._hang_until == float("inf"):
            return None
        return self._hang_until

    def hang_remaining(self) -> float | None:
        """Seconds until watches resume (`inf` until cleared), or None when not hung."""
        if not self.hung():
            return None
        assert self._hang_until is not None
        return self._hang_until - asyncio.get_running_loop().time()
