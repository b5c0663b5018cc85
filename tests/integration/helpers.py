"""Helpers for tests that talk to an API server: waiting on conditions, namespaces, objects."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from shared.apiresource import EVENTS, NAMESPACES, ApiResource
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.store import KubeDict

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


@dataclass
class ObjectScene:
    """A test's view of the objects of one resource in its namespace: read them, wait for a status, list Events.
    Each suite's Scene adds how it creates and drives its objects."""

    RESOURCE: ClassVar[ApiResource]
    kube: KubeClient
    namespace: str

    async def get(self, name: str) -> KubeDict:
        return await self.kube.get(self.RESOURCE, self.namespace, name)

    async def status(self, name: str) -> dict[str, Any]:
        return (await self.get(name)).get("status") or {}

    async def until(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            status = await self.status(name)
            return status if check(status) else None

        return await eventually(reached, timeout=timeout, what=f"{name}: {what}")

    async def phase(self, name: str, phase: str, timeout: float = 15) -> dict[str, Any]:
        return await self.until(name, lambda s: s.get("phase") == phase, f"phase {phase}", timeout)

    async def events(self, name: str) -> list[str]:
        """The reasons of the Events about `name`."""
        items = (await self.kube.list(EVENTS, self.namespace))["items"]
        return [e["reason"] for e in items if e["involvedObject"].get("name") == name]
