"""A byte-for-byte forwarder between TCP and Unix sockets, so a pod's network namespace needs no host port.

    python -m tests.image.bridge LISTEN=CONNECT [LISTEN=CONNECT ...]

Each endpoint is `tcp:HOST:PORT` or `unix:PATH`. Every connection accepted on LISTEN is joined to a new
connection to CONNECT; bytes (TLS included) pass unchanged in both directions. Run inside a pod's network namespace
(`nsenter --net=/proc/PID/ns/net`), it plays kube-proxy: the pod reaches the API server at 127.0.0.1 through a Unix
socket on the shared filesystem, and the test reaches the pod's probe ports through Unix sockets the same way, so
the pod's ports are bound in the pod's namespace only, as in a cluster. Prints `ready` once every LISTEN is bound;
SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _open(endpoint: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, _, address = endpoint.partition(":")
    if kind == "unix":
        return await asyncio.open_unix_connection(address)
    host, _, port = address.rpartition(":")
    return await asyncio.open_connection(host, int(port))


CONNECTIONS: set[asyncio.Task[None]] = set()  # cancelled on stop, so none is left pending at exit


def _handler(target: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        CONNECTIONS.add(task)
        task.add_done_callback(CONNECTIONS.discard)
        try:
            upstream_reader, upstream_writer = await _open(target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        for stream in (writer, upstream_writer):
            stream.close()
            with contextlib.suppress(ConnectionError, OSError):
                await stream.wait_closed()

    return handle


async def _serve(endpoint: str, target: str) -> asyncio.Server:
    kind, _, address = endpoint.partition(":")
    if kind == "unix":
        Path(address).unlink(missing_ok=True)
        server = await asyncio.start_unix_server(_handler(target), address)
        Path(address).chmod(0o666)
        return server
    if kind != "tcp":
        raise SystemExit(f"bridge: {endpoint!r}: expected tcp:HOST:PORT or unix:PATH")
    host, _, port = address.rpartition(":")
    return await asyncio.start_server(_handler(target), host, int(port))


async def main(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        listen, separator, connect = pair.partition("=")
        if not separator:
            raise SystemExit(f"bridge: {pair!r}: expected LISTEN=CONNECT")
        servers.append(await _serve(listen, connect))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    for task in list(CONNECTIONS):
        task.cancel()
    await asyncio.gather(*CONNECTIONS, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
