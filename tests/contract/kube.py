"""Small helpers over kubernetes-asyncio's raw path (`ApiClient.call_api(..., _preload_content=False)`).

This is the path our controllers use: kubernetes-asyncio 36.1.0 does not raise for error responses there, so a
`Reply` carries the status code and the parsed body (an object, a list or a Status) for the test to check.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes_asyncio.client import ApiClient

T = TypeVar("T")

GROUP = "kubernaut.ai"
VERSION = "v1alpha1"
WIDGETS_GROUP = "contract.kubernaut.ai"


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def reason(self) -> str | None:
        return self.body.get("reason") if isinstance(self.body, dict) else None


def resource_path(
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    *,
    group: str = GROUP,
    version: str = VERSION,
) -> str:
    """The REST path of a resource (`group=""` for the core group)."""
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace is not None:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def rr_path(namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
    return resource_path("remediationrequests", namespace, name, subresource)


def widget_path(namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
    return resource_path("widgets", namespace, name, subresource, group=WIDGETS_GROUP, version="v1")


def widget(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{WIDGETS_GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {"color": "red"},
    }


async def request(
    api: ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, str] | None = None,
    content_type: str | None = None,
    timeout: float = 15.0,
) -> Reply:
    """One API request through kubernetes-asyncio; the reply's body is parsed JSON (or text)."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.call_api(
        path,
        method,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=timeout,
    )
    try:
        raw = await response.read()
    finally:
        response.release()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(response.status, parsed, dict(response.headers))


async def create(api: ApiClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await request(api, "POST", path, body=body)
    assert reply.status == 201, reply.body
    created: dict[str, Any] = reply.body
    return created


async def get(api: ApiClient, path: str) -> Reply:
    return await request(api, "GET", path)


async def merge_patch(api: ApiClient, path: str, patch: dict[str, Any]) -> Reply:
    return await request(api, "PATCH", path, body=patch, content_type="application/merge-patch+json")


class WatchStream:
    """A watch read line by line from the raw response, as our informer reads it."""

    def __init__(self, api: ApiClient, path: str, query: Mapping[str, str]) -> None:
        self.api = api
        self.path = path
        self.query = {"watch": "true", **query}
        self.response: Any = None
        self.status = 0

    async def __aenter__(self) -> WatchStream:
        self.response = await self.api.call_api(
            self.path,
            "GET",
            query_params=list(self.query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        self.status = self.response.status
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.response.close()

    async def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next event, or None when the server ended the stream; TimeoutError if none comes in time."""
        async with asyncio.timeout(timeout):
            line = await self.response.content.readline()
        if not line:
            return None
        event: dict[str, Any] = json.loads(line)
        return event

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
        """Events up to and including the first that satisfies `predicate`; AssertionError if the stream ends first."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            assert event is not None, f"the stream ended before the expected event; saw {_summary(seen)}"
            seen.append(event)
            if predicate(event):
                return seen

    async def rest(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every remaining event until the server ends the stream."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            if event is None:
                return seen
            seen.append(event)


def _summary(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['type']} {e['object'].get('metadata', {}).get('name', '')}" for e in events]


def named(event: dict[str, Any]) -> str:
    name: str = event["object"]["metadata"].get("name", "")
    return name


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns a value other than None/False; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
