"""Ingest: events/s from one watch of 20 000 RR-sized objects into the informer's store, side by side with
kubernetes-asyncio's `watch.Watch().stream(...)` consuming the same stream (target: >= 3x the helper).

One pass takes well under a second, so the two sides alternate for several rounds and the medians are compared,
by wall time and by this process's CPU time (the client is CPU-bound; CPU time is what a busy machine disturbs least).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import watch

from benchmarks.canned import canned_watch
from benchmarks.objects import signal_when_stored
from shared.models import RemediationRequest
from shared.runtime.client import KubeClient
from shared.runtime.informer import Informer

EVENTS = 20_000
ROUNDS = 5


async def _informer(kubeconfig: Any, count: int) -> float:
    client = await KubeClient.connect(kubeconfig)
    informer = Informer(client, RemediationRequest.RESOURCE)
    done = signal_when_stored(informer, count)
    task = asyncio.create_task(informer.run())
    await informer.wait_for_sync()
    started = time.perf_counter()
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    return elapsed


async def _watch_helper(kubeconfig: Any, count: int) -> float:
    client = await KubeClient.connect(kubeconfig)
    api = k8s.CustomObjectsApi(client._api)
    seen = 0
    started = time.perf_counter()
    async with watch.Watch() as helper:  # it holds an ApiClient of its own
        stream = helper.stream(
            api.list_cluster_custom_object, "kubernaut.ai", "v1alpha1", "remediationrequests", resource_version="1"
        )
        async for _event in stream:
            seen += 1
            if seen >= count:
                break
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def _timed(side: Callable[[Any, int], Awaitable[float]], kubeconfig: Any, count: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one pass."""
    cpu = time.process_time()
    wall = await side(kubeconfig, count)
    return wall, time.process_time() - cpu


async def run(events: int = EVENTS, rounds: int = ROUNDS) -> dict[str, Any]:
    ours: list[tuple[float, float]] = []
    helper: list[tuple[float, float]] = []
    for _ in range(rounds):
        with canned_watch(events) as kubeconfig:
            ours.append(await _timed(_informer, kubeconfig, events))
        with canned_watch(events) as kubeconfig:
            helper.append(await _timed(_watch_helper, kubeconfig, events))
    ours_wall, ours_cpu = (statistics.median(x) for x in zip(*ours, strict=True))
    helper_wall, helper_cpu = (statistics.median(x) for x in zip(*helper, strict=True))
    return {
        "events": events,
        "rounds": rounds,
        "informer_events_per_second": round(events / ours_wall),
        "watch_helper_events_per_second": round(events / helper_wall),
        "ratio": round(helper_wall / ours_wall, 2),
        "ratio_cpu": round(helper_cpu / ours_cpu, 2),
        "target_3x": helper_wall / ours_wall >= 3,
    }
