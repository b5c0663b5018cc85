"""The informer's cache: objects by key plus named indexes (client-go's Indexer).

Each object is kept as its compact JSON bytes and decoded on read. Measured on RR-sized objects this holds a cached
object in about its JSON size (plain dicts took 3.8 times that), keeps the cache out of the garbage collector's
scans (bytes are not tracked; a large dict cache made every collection slower), and costs ~5 us per read, small next
to a reconcile. Every read returns a fresh dict, so no reader can corrupt the cache.

A reader that needs only a few fields of many objects (routing reads every execution on a target) asks for a
projection instead (`by_index_projected`): an immutable value computed from the decoded object once per stored
version and kept until the object changes, so a hot index entry is not decoded again on every read (issue 14).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import orjson

KubeDict = dict[str, Any]
IndexFunc = Callable[[KubeDict], Iterable[str]]
"""Returns the index values of an object: none, one or many."""

_EMPTY: frozenset[str] = frozenset()
P = TypeVar("P")


def object_key(obj: KubeDict) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object (client-go's MetaNamespaceKeyFunc)."""
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def section(obj: KubeDict, name: str) -> dict[str, Any]:
    """`obj[name]` when it is a mapping, else an empty dict: cached objects may break their schema."""
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


class ReadOnlyStore(Protocol):
    """What reconcilers may do with a cache: read."""

    def get(self, key: str) -> KubeDict | None: ...

    def list(self) -> builtins.list[KubeDict]: ...

    def keys(self) -> builtins.list[str]: ...

    def by_index(self, index: str, value: str) -> builtins.list[KubeDict]: ...

    def index_keys(self, index: str, value: str) -> frozenset[str]: ...

    def by_index_projected(self, index: str, value: str, project: Callable[[KubeDict], P]) -> builtins.list[P]: ...

    def index_values(self, index: str) -> builtins.list[str]: ...

    def __len__(self) -> int: ...


class Indexer:
    """Objects by key, plus for each named index: value -> set of keys. An update touches only changed entries."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, bytes] = {}
        self._versions: dict[str, str] = {}
        self._indexers = dict(indexers or {})
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        # The values each key is filed under, per index, so an update need not recompute the old object's values.
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in self._indexers}
        # project function -> key -> its value for the stored version; an entry goes when its object changes.
        self._projected: dict[Callable[[KubeDict], Any], dict[str, Any]] = {}

    # -- reads ----------------------------------------------------------------------------------------------
    def get(self, key: str) -> KubeDict | None:
        data = self._items.get(key)
        return None if data is None else decode(data)

    def list(self) -> builtins.list[KubeDict]:
        return [decode(data) for data in self._items.values()]

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def resource_version(self, key: str) -> str | None:
        """The cached object's resourceVersion, without decoding it."""
        return self._versions.get(key)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def by_index(self, index: str, value: str) -> builtins.list[KubeDict]:
        items = self._items
        return [decode(items[key]) for key in self._index(index).get(value, _EMPTY)]

    def by_index_projected(self, index: str, value: str, project: Callable[[KubeDict], P]) -> builtins.list[P]:
        """`[project(o) for o in by_index(index, value)]`, each object decoded and projected once per version.
        `project` must be a pure function of the object returning an immutable value (it is shared by readers)."""
        projected: dict[str, P] = self._projected.setdefault(project, {})
        result = []
        for key in self._index(index).get(value, _EMPTY):
            found = projected.get(key)
            if found is None:
                found = projected[key] = project(decode(self._items[key]))
            result.append(found)
        return result

    def index_keys(self, index: str, value: str) -> frozenset[str]:
        return frozenset(self._index(index).get(value, _EMPTY))

    def index_values(self, index: str) -> builtins.list[str]:
        return list(self._index(index))

    def _index(self, name: str) -> dict[str, set[str]]:
        try:
            return self._indices[name]
        except KeyError:
            raise KeyError(f"no index named {name!r} (have {sorted(self._indices)})") from None

    # -- writes (the informer's) ----------------------------------------------------------------------------
    def upsert(self, key: str, obj: KubeDict) -> bytes | None:
        """Store `obj` under `key`; return the encoded object it replaced, if any (see `decode`)."""
        old = self._items.get(key)
        # orjson hands back its whole write buffer (4 KiB for a 1.3 KB object); keep an exact-size copy.
        self._items[key] = memoryview(orjson.dumps(obj)).tobytes()
        self._versions[key] = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        for projected in self._projected.values():
            projected.pop(key, None)
        for name, func in self._indexers.items():
            self._refile(name, key, tuple(dict.fromkeys(func(obj))))
        return old

    def delete(self, key: str) -> bytes | None:
        """Remove `key`; return the last known object, encoded, if any."""
        old = self._items.pop(key, None)
        if old is not None:
            del self._versions[key]
            for projected in self._projected.values():
                projected.pop(key, None)
            for name in self._indexers:
                self._refile(name, key, ())
        return old

    def _refile(self, name: str, key: str, new_values: tuple[str, ...]) -> None:
        filed = self._filed[name]
        old_values = filed.get(key, ())
        if old_values == new_values:
            return
        index = self._indices[name]
        for value in old_values:
            if value not in new_values:
                keys = index[value]
                keys.discard(key)
                if not keys:
                    del index[value]
        for value in new_values:
            if value not in old_values:
                index.setdefault(value, set()).add(key)
        if new_values:
            filed[key] = new_values
        else:
            filed.pop(key, None)


def decode(data: bytes) -> KubeDict:
    decoded: KubeDict = orjson.loads(data)
    return decoded
