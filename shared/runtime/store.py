"""The informer's cache: objects by key plus named indexes (client-go's Indexer).

Objects are the API server's JSON as plain dicts (after the informer's transform). Readers must treat them as
read-only: the same dict is shared by every reader until the next watch event replaces it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

KubeDict = dict[str, Any]
IndexFunc = Callable[[KubeDict], Iterable[str]]
"""Returns the index values of an object: none, one or many."""

_EMPTY: frozenset[str] = frozenset()


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

    def index_values(self, index: str) -> builtins.list[str]: ...

    def __len__(self) -> int: ...


class Indexer:
    """Objects by key, plus for each named index: value -> set of keys. An update touches only changed entries."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, KubeDict] = {}
        self._indexers = dict(indexers or {})
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        # The values each key is filed under, per index, so an update need not recompute the old object's values.
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in self._indexers}

    # -- reads ----------------------------------------------------------------------------------------------
    def get(self, key: str) -> KubeDict | None:
        return self._items.get(key)

    def list(self) -> builtins.list[KubeDict]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def by_index(self, index: str, value: str) -> builtins.list[KubeDict]:
        items = self._items
        return [items[key] for key in self._index(index).get(value, _EMPTY)]

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
    def upsert(self, key: str, obj: KubeDict) -> KubeDict | None:
        """Store `obj` under `key`; return the object it replaced, if any."""
        old = self._items.get(key)
        self._items[key] = obj
        for name, func in self._indexers.items():
            self._refile(name, key, tuple(dict.fromkeys(func(obj))))
        return old

    def delete(self, key: str) -> KubeDict | None:
        """Remove `key`; return the last known object, if any."""
        old = self._items.pop(key, None)
        if old is not None:
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
