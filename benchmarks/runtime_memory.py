"""Memory: RSS growth per cached RR at 10 000 and 100 000 objects, next to the objects' JSON size (target <= 3x;
issue 14 asks <= 1.5x).

Each size is measured in a fresh process that fills an informer's cache from a canned watch stream, so the
numbers are not blurred by earlier runs.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from typing import Any

import orjson

from benchmarks.canned import canned_watch
from benchmarks.objects import remediation_request, signal_when_stored
from shared.models import RemediationRequest
from shared.runtime.client import KubeClient
from shared.runtime.informer import Informer
from shared.runtime.logging import configure_logging

SIZES = (10_000, 100_000)


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _fill(kubeconfig: Any, count: int) -> tuple[int, int]:
    client = await KubeClient.connect(kubeconfig)
    informer = Informer(client, RemediationRequest.RESOURCE)
    done = signal_when_stored(informer, count)
    task = asyncio.create_task(informer.run())
    await informer.wait_for_sync()
    gc.collect()
    before = _rss()
    await asyncio.wait_for(done.wait(), 600)
    gc.collect()
    after = _rss()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    return before, after


def _measure(count: int, results: Any) -> None:
    configure_logging("auto", "warning", process="benchmarks")  # a spawned process starts unconfigured (stdout)
    with canned_watch(count) as kubeconfig:
        before, after = asyncio.run(_fill(kubeconfig, count))
    results.put((before, after))


async def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    json_size = sum(len(orjson.dumps(remediation_request(i))) for i in range(1000)) / 1000
    context = multiprocessing.get_context("spawn")
    report: dict[str, Any] = {"json_bytes_per_object": round(json_size)}
    for count in sizes:
        results = context.Queue()
        process = context.Process(target=_measure, args=(count, results))
        process.start()
        before, after = await asyncio.to_thread(results.get, True, 900)
        process.join(60)
        per_object = (after - before) / count
        report[str(count)] = {
            "rss_growth_bytes_per_object": round(per_object),
            "ratio_to_json": round(per_object / json_size, 2),
            "target_3x": per_object / json_size <= 3,
            "target_1_5x": per_object / json_size <= 1.5,  # issue 14
        }
    return report
