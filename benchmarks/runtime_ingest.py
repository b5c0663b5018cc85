"""Ingest: events/s from one watch of 20 000 RR-sized objects into the informer's store, side by side with
kubernetes-asyncio's `watch.Watch().stream(...)` consuming the same stream (target: >= 3x the helper)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import watch

from benchmarks.canned import canned_watch
from benchmarks.objects import signal_when_stored
from shared.models import RemediationRequest
from shared.runtime.client import KubeClient
from shared.runtime.informer import Informer

EVENTS = 20_000


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
    stream = watch.Watch().stream(
        api.list_cluster_custom_object, "kubernaut.ai", "v1alpha1", "remediationrequests", resource_version="1"
    )
    async for _event in stream:
        seen += 1
        if seen >= count:
            break
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def run(events: int = EVENTS) -> dict[str, Any]:
    with canned_watch(events) as kubeconfig:
        ours = await _informer(kubeconfig, events)
        helper = await _watch_helper(kubeconfig, events)
    return {
        "events": events,
        "informer_events_per_second": round(events / ours),
        "watch_helper_events_per_second": round(events / helper),
        "ratio": round(helper / ours, 2),
        "target_3x": helper / ours >= 3,
    }
