"""The sandbox API server under load: create N objects and stream them to watchers; objects per second.

Measured twice: with the sandbox in a thread of this process (`sandbox.testing`, as tests run it, sharing the
interpreter with the client as controller benchmarks will), and as a separate process (`python -m sandbox`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from sandbox.testing import running_sandbox, sandbox_process

OBJECTS = 10_000
WATCHERS = 3
CONCURRENCY = 32
PATH = "/apis/kubernaut.ai/v1alpha1/namespaces/default/remediationrequests"


def _object(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "RemediationRequest",
        "metadata": {"name": f"rr-{index:05d}", "labels": {"bench": "sandbox"}},
        "spec": {
            "signalFingerprint": f"{index:064x}",
            "signalName": "HighMemory",
            "targetResource": {"kind": "Deployment", "name": f"web-{index}", "namespace": "default"},
            "workflowRef": {"workflowId": "restart-pods", "executionBundle": "registry.example.com/w:v1"},
        },
    }


async def _watch(session: aiohttp.ClientSession, url: str, version: str, ready: asyncio.Event) -> float:
    """Read ADDED events until every object was seen; the time the last one arrived."""
    seen = 0
    async with session.get(url, params={"watch": "1", "resourceVersion": version, "timeoutSeconds": "600"}) as response:
        ready.set()
        async for line in response.content:
            if orjson.loads(line)["type"] == "ADDED":
                seen += 1
                if seen == OBJECTS:
                    return time.perf_counter()
    raise RuntimeError(f"the watch ended after {seen} of {OBJECTS} events")


@asynccontextmanager
async def _in_thread() -> AsyncIterator[str]:
    with running_sandbox() as sandbox:
        yield sandbox.url


@asynccontextmanager
async def _subprocess() -> AsyncIterator[str]:
    with sandbox_process() as sandbox:
        yield sandbox.url


async def _measure(base: str) -> dict[str, Any]:
    url = base + PATH
    connector = aiohttp.TCPConnector(limit=CONCURRENCY + WATCHERS)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer bench"}) as session:
        async with session.get(url) as response:
            version = (await response.json())["metadata"]["resourceVersion"]
        readies = [asyncio.Event() for _ in range(WATCHERS)]
        watchers = [asyncio.create_task(_watch(session, url, version, ready)) for ready in readies]
        await asyncio.gather(*(ready.wait() for ready in readies))
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(OBJECTS):
            queue.put_nowait(index)

        async def creator() -> None:
            while not queue.empty():
                body = orjson.dumps(_object(queue.get_nowait()))
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as reply:
                    if reply.status != 201:
                        raise RuntimeError(f"create answered {reply.status}: {await reply.text()}")
                    await reply.read()

        started = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(CONCURRENCY)))
        created = time.perf_counter()
        delivered = max(await asyncio.gather(*watchers))
    create_seconds = created - started
    delivery_seconds = delivered - started
    return {
        "create_seconds": round(create_seconds, 3),
        "create_objects_per_second": round(OBJECTS / create_seconds),
        "watch_delivery_seconds": round(delivery_seconds, 3),
        "watch_objects_per_second": round(OBJECTS / delivery_seconds),
        "watch_events_per_second_all_watchers": round(OBJECTS * WATCHERS / delivery_seconds),
    }


async def run() -> dict[str, Any]:
    """10 000 RemediationRequests created by 32 concurrent clients while 3 watchers stream them."""
    async with _in_thread() as url:
        in_thread = await _measure(url)
    async with _subprocess() as url:
        separate = await _measure(url)
    return {
        "objects": OBJECTS,
        "watchers": WATCHERS,
        "concurrency": CONCURRENCY,
        "in_thread": in_thread,
        "subprocess": separate,
    }
