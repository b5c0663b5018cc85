"""Helpers for tests that talk to an API server: waiting on conditions, namespaces, objects."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.apiresource import NAMESPACES
from shared.runtime.client import ApiError, KubeClient

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T] | T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Wait until `check()` returns something truthy (sync or async) and return it; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        result = check()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        if result:
            return result  # type: ignore[return-value]
        last = result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check} (last: {last!r})")
        await asyncio.sleep(interval)


async def create_namespace(client: KubeClient, prefix: str = "test") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def delete_namespace(client: KubeClient, name: str) -> None:
    try:
        await client.delete(NAMESPACES, None, name)
    except ApiError as error:
        if not error.not_found:
            raise
