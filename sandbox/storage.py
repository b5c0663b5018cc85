"""The object store: what etcd is to the API server, plus the watch history the watch cache keeps.

Objects live per storage key (one per resource; `events` are shared by `v1` and `events.k8s.io/v1`) and namespace.
Every write takes the next value of one global revision counter, stamps it into `metadata.resourceVersion`, and
records one `Change` in a bounded history, in revision order. Stored objects are immutable: a `StoredObject` holds
the parsed dict and its serialised bytes, so reads send bytes without copying or re-encoding.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

import orjson

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
T = TypeVar("T")

DEFAULT_HISTORY_CAPACITY: Final = 100_000


class KeyExistsError(Exception):
    """A create found an object under the same key."""


class RevisionExpiredError(Exception):
    """A request needs history older than what is kept."""

    def __init__(self, requested: int, floor: int) -> None:
        super().__init__(f"revision {requested} is older than the history floor {floor}")
        self.requested = requested
        self.floor = floor


class StoredObject:
    """One version of one object: its dict (never mutated), its JSON bytes and its revision."""

    __slots__ = ("_cache", "data", "raw", "rv")

    def __init__(self, data: dict[str, Any], rv: int) -> None:
        self.data = data
        self.rv = rv
        self.raw = orjson.dumps(data)
        self._cache: dict[Any, Any] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.data["metadata"]
        return meta

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.metadata.get("labels") or {}
        return labels

    def cached(self, key: Any, build: Callable[[], T]) -> T:
        """A value derived from this version (a view's bytes, field values), computed once."""
        if self._cache is None:
            self._cache = {}
        if key not in self._cache:
            self._cache[key] = build()
        value: T = self._cache[key]
        return value

    def mutable_copy(self) -> dict[str, Any]:
        """A deep copy to build the next version from."""
        copy: dict[str, Any] = orjson.loads(self.raw)
        return copy

    def restamped(self, rv: int) -> StoredObject:
        """The same content at another revision (a deletion, or an object leaving a filtered watch)."""
        data = dict(self.data)
        data["metadata"] = {**self.metadata, "resourceVersion": str(rv)}
        return StoredObject(data, rv)


@dataclass(slots=True)
class Change:
    """One committed write, as the watch history keeps it: the object after (`obj`) and before (`prev`)."""

    rv: int
    type: EventType
    storage: str
    namespace: str
    name: str
    obj: StoredObject
    prev: StoredObject | None
    _cache: dict[Any, Any] | None = field(default=None, repr=False)

    def cached(self, key: Any, build: Callable[[], T]) -> T:
        """A value derived from this change (a watch line for one view), computed once for all watchers."""
        if self._cache is None:
            self._cache = {}
        if key not in self._cache:
            self._cache[key] = build()
        value: T = self._cache[key]
        return value


class History:
    """The last `capacity` changes, in revision order; a watch can resume from any revision >= `floor`."""

    def __init__(self, capacity: int = DEFAULT_HISTORY_CAPACITY) -> None:
        self.capacity = capacity
        self.floor = 0
        self._changes: list[Change] = []
        self._start = 0

    def __len__(self) -> int:
        return len(self._changes) - self._start

    @property
    def oldest(self) -> int | None:
        return self._changes[self._start].rv if len(self) else None

    def append(self, change: Change) -> None:
        self._changes.append(change)
        while len(self) > self.capacity:
            self.floor = self._changes[self._start].rv
            self._start += 1
        if self._start > max(1024, self.capacity):
            del self._changes[: self._start]
            self._start = 0

    def since(self, rv: int) -> list[Change]:
        """Every kept change after revision `rv`; RevisionExpiredError when some of them were dropped."""
        if rv < self.floor:
            raise RevisionExpiredError(rv, self.floor)
        index = bisect.bisect_right(self._changes, rv, lo=self._start, key=lambda change: change.rv)
        return self._changes[index:]

    def compact(self, rv: int) -> int:
        """Drop every change up to revision `rv` (as etcd compaction does); returns how many were dropped."""
        index = bisect.bisect_right(self._changes, rv, lo=self._start, key=lambda change: change.rv)
        dropped = index - self._start
        self._start = index
        self.floor = max(self.floor, rv)
        return dropped


Listener = Callable[[Change], None]


class Storage:
    """All objects of all resources, the revision counter and the history. Single-threaded by design."""

    def __init__(self, history_capacity: int = DEFAULT_HISTORY_CAPACITY) -> None:
        self.revision = 0
        self.history = History(history_capacity)
        self._buckets: dict[str, dict[Key, StoredObject]] = {}
        self._sorted: dict[str, list[Key]] = {}
        self._by_uid: dict[str, tuple[str, Key]] = {}
        self._dependents: dict[str, set[tuple[str, Key]]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._observers: list[Listener] = []

    # reads

    def get(self, storage: str, namespace: str, name: str) -> StoredObject | None:
        return self._buckets.get(storage, {}).get((namespace, name))

    def items(self, storage: str, namespace: str | None = None) -> list[StoredObject]:
        """The objects of a resource (in one namespace, or all), ordered by namespace then name, as etcd lists."""
        bucket = self._buckets.get(storage)
        if not bucket:
            return []
        keys = self._sorted.get(storage)
        if keys is None:
            keys = sorted(bucket)
            self._sorted[storage] = keys
        if namespace is None:
            return [bucket[key] for key in keys]
        lo = bisect.bisect_left(keys, (namespace, ""))
        hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
        return [bucket[key] for key in keys[lo:hi]]

    def count(self, storage: str) -> int:
        return len(self._buckets.get(storage, {}))

    def storages(self) -> list[str]:
        return [name for name, bucket in self._buckets.items() if bucket]

    def by_uid(self, uid: str) -> StoredObject | None:
        found = self._by_uid.get(uid)
        if found is None:
            return None
        storage, key = found
        return self._buckets[storage].get(key)

    def storage_of(self, uid: str) -> str | None:
        found = self._by_uid.get(uid)
        return found[0] if found else None

    def dependents(self, owner_uid: str) -> list[tuple[str, StoredObject]]:
        """Objects whose ownerReferences name `owner_uid`, with their storage key."""
        found = []
        for storage, key in self._dependents.get(owner_uid, ()):
            obj = self._buckets.get(storage, {}).get(key)
            if obj is not None:
                found.append((storage, obj))
        return found

    def snapshot(self, storage: str, namespace: str | None, rv: int) -> list[StoredObject]:
        """The objects of a resource as they were at revision `rv`, rebuilt from the history."""
        current = self.items(storage, namespace)
        if rv >= self.revision:
            return current
        reverted: dict[Key, StoredObject | None] = {}
        for change in self.history.since(rv):
            if change.storage == storage and (namespace is None or change.namespace == namespace):
                reverted.setdefault((change.namespace, change.name), change.prev)
        if not reverted:
            return current
        state = {(obj.namespace, obj.name): obj for obj in current}
        for key, previous in reverted.items():
            if previous is None:
                state.pop(key, None)
            else:
                state[key] = previous
        return [state[key] for key in sorted(state)]

    # writes

    def create(self, storage: str, namespace: str, name: str, data: dict[str, Any]) -> StoredObject:
        """Store a new object (the dict becomes the store's); KeyExistsError if the key is taken."""
        bucket = self._buckets.setdefault(storage, {})
        key = (namespace, name)
        if key in bucket:
            raise KeyExistsError(f"{storage} {namespace}/{name}")
        obj = self._stamp(data)
        bucket[key] = obj
        self._sorted.pop(storage, None)
        self._index(storage, key, None, obj)
        self._commit(Change(obj.rv, "ADDED", storage, namespace, name, obj, None))
        return obj

    def update(self, storage: str, namespace: str, name: str, data: dict[str, Any]) -> StoredObject:
        """Replace an existing object (the dict becomes the store's)."""
        bucket = self._buckets[storage]
        key = (namespace, name)
        previous = bucket[key]
        obj = self._stamp(data)
        bucket[key] = obj
        self._index(storage, key, previous, obj)
        self._commit(Change(obj.rv, "MODIFIED", storage, namespace, name, obj, previous))
        return obj

    def delete(self, storage: str, namespace: str, name: str) -> StoredObject:
        """Remove an object; returns its last content at the deletion's revision, as the watch reports it."""
        bucket = self._buckets[storage]
        key = (namespace, name)
        previous = bucket.pop(key)
        self._sorted.pop(storage, None)
        self.revision += 1
        final = previous.restamped(self.revision)
        self._index(storage, key, previous, None)
        self._commit(Change(final.rv, "DELETED", storage, namespace, name, final, previous))
        return final

    def drop_storage(self, storage: str) -> None:
        """Forget a resource's objects without events (its CRD is gone)."""
        for obj in self._buckets.pop(storage, {}).values():
            self._index(storage, (obj.namespace, obj.name), obj, None)
        self._sorted.pop(storage, None)

    # notifications

    def subscribe(self, storage: str, listener: Listener) -> None:
        """Call `listener` synchronously with every change of one resource (watch fan-out)."""
        self._listeners.setdefault(storage, []).append(listener)

    def unsubscribe(self, storage: str, listener: Listener) -> None:
        listeners = self._listeners.get(storage, [])
        if listener in listeners:
            listeners.remove(listener)

    def observe(self, listener: Listener) -> None:
        """Call `listener` with every change of every resource (the built-in controllers)."""
        self._observers.append(listener)

    def unobserve(self, listener: Listener) -> None:
        if listener in self._observers:
            self._observers.remove(listener)

    def _stamp(self, data: dict[str, Any]) -> StoredObject:
        self.revision += 1
        data["metadata"]["resourceVersion"] = str(self.revision)
        return StoredObject(data, self.revision)

    def _commit(self, change: Change) -> None:
        self.history.append(change)
        for listener in tuple(self._listeners.get(change.storage, ())):
            listener(change)
        for observer in tuple(self._observers):
            observer(change)

    def _index(self, storage: str, key: Key, before: StoredObject | None, after: StoredObject | None) -> None:
        if before is not None:
            self._by_uid.pop(before.uid, None)
            for owner in _owner_uids(before):
                dependents = self._dependents.get(owner)
                if dependents is not None:
                    dependents.discard((storage, key))
                    if not dependents:
                        del self._dependents[owner]
        if after is not None:
            self._by_uid[after.uid] = (storage, key)
            for owner in _owner_uids(after):
                self._dependents.setdefault(owner, set()).add((storage, key))


def _owner_uids(obj: StoredObject) -> Iterable[str]:
    owners = obj.metadata.get("ownerReferences") or ()
    return [owner["uid"] for owner in owners if isinstance(owner, dict) and owner.get("uid")]
