"""The two habits every reconciler here shares: decide on the latest object, and write status conditionally.

- `reconcile_latest`: decide on the cached object first; after a 409 Conflict, read the object from the API server
  and decide again (client-go's RetryOnConflict with a fresh GET), a few times.
- `update_status`: merge-patch the status to what was decided, only if it differs, conditional on the
  resourceVersion the decision was based on, and write the answer through into the cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.runtime.client import ApiError, KubeClient, merge_patch, retry_on_conflict
from shared.runtime.controller import Result
from shared.runtime.informer import Informer
from shared.runtime.store import KubeDict, section, split_key


async def reconcile_latest(
    key: str,
    informer: Informer,
    client: KubeClient,
    handle: Callable[[KubeDict], Awaitable[Result]],
    *,
    attempts: int = 4,
) -> Result:
    """Run `handle` on the cached object (done if absent); on a Conflict, again on a fresh read."""
    first = True

    async def attempt() -> Result:
        nonlocal first
        if first:
            first = False
            obj = informer.store.get(key)
        else:
            namespace, name = split_key(key)
            try:
                obj = await client.get(informer.resource, namespace, name)
            except ApiError as error:
                if not error.not_found:
                    raise
                obj = None
        return Result.done() if obj is None else await handle(obj)

    return await retry_on_conflict(attempt, attempts=attempts)


async def update_status(
    client: KubeClient, informer: Informer, obj: KubeDict, status: dict[str, Any]
) -> KubeDict | None:
    """Make `obj`'s status equal `status`; None if it already was. Raises ApiError (409 if `obj` is stale)."""
    patch = merge_patch(section(obj, "status"), status)
    if not patch:
        return None
    meta = obj["metadata"]
    version = meta.get("resourceVersion")
    updated = await client.patch_status(
        informer.resource, meta.get("namespace"), meta["name"], patch, resource_version=version
    )
    informer.write_through(updated, replaces=version)
    return updated
