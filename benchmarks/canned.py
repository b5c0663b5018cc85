"""A canned watch server in its own process: one watch stream of prepared events, then silence.

It isolates the client side: whatever reads the stream (our informer, kubernetes-asyncio's Watch helper) is
measured against the same bytes, with none of a real API server's work in the way.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from benchmarks.objects import remediation_request
from sandbox.stack import free_port


def _serve(port: int, count: int, ready: Any) -> None:
    lines = [orjson.dumps({"type": "ADDED", "object": remediation_request(i)}) + b"\n" for i in range(count)]
    chunk = 64 * 1024

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "1", "True"):
            return web.json_response(
                {
                    "kind": "RemediationRequestList",
                    "apiVersion": "kubernaut.ai/v1alpha1",
                    "metadata": {"resourceVersion": "1"},
                    "items": [],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        batch: list[bytes] = []
        size = 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= chunk:
                await response.write(b"".join(batch))
                batch, size = [], 0
        if batch:
            await response.write(b"".join(batch))
        await asyncio.sleep(3600)  # then silence, like a quiet cluster
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def canned_watch(count: int) -> Iterator[Path]:
    """Serve `count` RR ADDED events on one watch; yield a kubeconfig pointing at it."""
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_serve, args=(port, count, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the canned watch server did not start")
        with tempfile.TemporaryDirectory() as directory:
            kubeconfig = Path(directory) / "kubeconfig"
            kubeconfig.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": "canned",
                        "clusters": [{"name": "canned", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                        "users": [{"name": "canned", "user": {"token": "benchmark"}}],
                        "contexts": [{"name": "canned", "context": {"cluster": "canned", "user": "canned"}}],
                    }
                )
            )
            yield kubeconfig
    finally:
        process.terminate()
        process.join(10)
