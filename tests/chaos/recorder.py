"""The chaos suite's own witnesses: every watch event of the resources under test, and the sandbox's audit log.

The recorder watches from the revision before anything started and keeps every ADDED/MODIFIED/DELETED event with
its resourceVersion. It survives the faults it witnesses: a dropped, ended or silent stream is re-opened from the
last revision it saw (the sandbox keeps the whole history, so nothing is skipped), and a 410 relists and marks a
gap (the replay checks then say they are incomplete). The sandbox's resourceVersion is one global counter, so
events of all resources merge into one order of changes.

The audit collector pages the sandbox's audit log as the run goes (it is a ring buffer) and notes any records it
could not see.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from sandbox.audit import AuditRecord
from sandbox.client import AsyncSandboxAdmin
from shared.apiresource import ApiResource
from shared.runtime.client import ApiError, KubeClient

KubeDict = dict[str, Any]
INACTIVITY = 6.0  # seconds without a line (the sandbox bookmarks every 2 s) before the stream counts as hung
RECONNECT_PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change of one object."""

    revision: int
    type: str  # ADDED, MODIFIED, DELETED, or RELISTED (seen in a relist after a gap)
    resource: str  # plural
    key: str  # namespace/name
    obj: KubeDict
    seen: float  # wall-clock time the recorder read it


def key_of(obj: KubeDict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name')}"


@dataclass
class ResourceLog:
    """Every change of one resource, and the latest object of each key."""

    resource: ApiResource
    changes: list[Change] = field(default_factory=list)
    current: dict[str, KubeDict] = field(default_factory=dict)
    revision: int = 0
    reconnects: int = 0
    gaps: int = 0
    watches: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def record(self, kind: str, obj: KubeDict) -> None:
        meta = obj.setdefault("metadata", {})
        meta.pop("managedFields", None)
        revision = int(meta.get("resourceVersion") or 0)
        key = key_of(obj)
        if revision <= self.revision and kind != "RELISTED":
            return  # a replay we already hold (a re-watch may repeat the last event)
        self.changes.append(Change(revision, kind, self.resource.plural, key, obj, time.time()))
        self.revision = max(self.revision, revision)
        if kind == "DELETED":
            self.current.pop(key, None)
        else:
            self.current[key] = obj


class Recorder:
    """Watches `resources` from `since` until stopped; `logs[plural]` holds what it saw."""

    def __init__(self, client: KubeClient, resources: list[ApiResource], since: int) -> None:
        self._client = client
        self.logs = {resource.plural: ResourceLog(resource, revision=since) for resource in resources}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow(log), name=f"recorder-{p}") for p, log in self.logs.items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def caught_up(self, revision: int, timeout: float = 30.0) -> bool:
        """Wait until every watch has seen (an event or bookmark at) `revision` or later."""
        deadline = time.monotonic() + timeout
        while any(log.revision < revision for log in self.logs.values()):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def merged(self, *plurals: str) -> Iterator[Change]:
        """The changes of the named resources in revision order (the order they happened in)."""
        changes = [change for plural in plurals for change in self.logs[plural].changes]
        return iter(sorted(changes, key=lambda change: change.revision))

    @property
    def gaps(self) -> int:
        return sum(log.gaps for log in self.logs.values())

    async def _follow(self, log: ResourceLog) -> None:
        while True:
            try:
                await self._watch(log)
            except _Expired:
                await self._relist(log)
            except Exception as error:  # dropped, refused, hung or garbled: note it and re-watch from where we were
                log.errors[type(error).__name__] = log.errors.get(type(error).__name__, 0) + 1
            log.reconnects += 1
            await asyncio.sleep(RECONNECT_PAUSE)

    async def _watch(self, log: ResourceLog) -> None:
        query = {
            "watch": "true",
            "resourceVersion": str(log.revision),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "120",
        }
        log.watches += 1
        async with self._client.stream(log.resource.path(), query=query) as response:
            buffer = bytearray()
            while True:
                async with asyncio.timeout(INACTIVITY):
                    chunk = await response.content.readany()
                if not chunk:
                    return
                buffer += chunk
                while (end := buffer.find(b"\n")) != -1:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        self._handle(log, orjson.loads(line))

    @staticmethod
    def _handle(log: ResourceLog, event: KubeDict) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "BOOKMARK":
            log.revision = max(log.revision, int((obj.get("metadata") or {}).get("resourceVersion") or 0))
        elif kind == "ERROR":
            if obj.get("code") == 410:
                raise _Expired(str(obj.get("message")))
            raise ApiError(int(obj.get("code") or 0), str(obj.get("reason")), str(obj.get("message")))
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            log.record(kind, obj)

    async def _relist(self, log: ResourceLog) -> None:
        """The history we needed is gone: take the current state and say the record has a gap."""
        log.gaps += 1
        page = await self._client.list(log.resource)
        listed = {key_of(item): item for item in page.get("items") or []}
        revision = int((page.get("metadata") or {}).get("resourceVersion") or 0)
        for key in set(log.current) - set(listed):
            gone = {**log.current[key]}
            gone["metadata"] = {**gone["metadata"], "resourceVersion": str(revision)}
            log.record("DELETED", gone)
        for item in listed.values():
            log.record("RELISTED", item)
        log.revision = max(log.revision, revision)


class _Expired(Exception):
    pass


class AuditCollector:
    """Pages the sandbox's audit log every `interval` seconds; `records` is everything seen, oldest first."""

    def __init__(self, admin: AsyncSandboxAdmin, interval: float = 2.0) -> None:
        self._admin = admin
        self._interval = interval
        self.records: list[AuditRecord] = []
        self.missed = 0  # records that left the ring buffer before we read them
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="audit-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.collect()

    async def collect(self) -> None:
        last = self.records[-1].sequence if self.records else 0
        fresh = await self._admin.audit(since=last)
        if fresh and fresh[0].sequence != last + 1:
            self.missed += fresh[0].sequence - last - 1
        self.records += fresh

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(Exception):
                await self.collect()
