"""A sandbox in a background thread, for tests: its own event loop, a random port, kubeconfigs on disk.

    with running_sandbox() as sandbox:
        client = await kubernetes_asyncio.config.new_client_from_config(str(sandbox.kubeconfig_path))
        sandbox.admin.drop_watches()

The thread's loop is independent of the test's (pytest-asyncio gives each test its own), so one sandbox can
serve a whole test module. Faults and inspection go through `admin`, the same client a separate process uses.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sandbox.client import SandboxAdmin
from sandbox.kubeconfig import ADMIN_USER, write_kubeconfig
from sandbox.server import Sandbox, SandboxConfig

TEST_BOOKMARK_INTERVAL = 2.0  # seconds; short so tests see periodic bookmarks quickly


@dataclass
class SandboxHandle:
    """A running sandbox: where it listens, kubeconfigs for it, its admin client."""

    url: str
    admin_url: str
    kubeconfig_path: Path
    admin: SandboxAdmin
    directory: Path
    _runner: SandboxThread = field(repr=False)

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig whose bearer token identifies `user` (the name the audit log records)."""
        path = self.directory / f"kubeconfig-{_safe(user)}.yaml"
        if not path.exists():
            write_kubeconfig(path, self.url, user)
        return path

    def stop(self) -> None:
        self._runner.stop()


def _safe(user: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in user)


class SandboxThread:
    """Runs a Sandbox on an event loop in a daemon thread."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.sandbox: Sandbox | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox", daemon=True)
        self._started: Future[None] = Future()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        if self._started.exception() is None:
            self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _start(self) -> None:
        try:
            self.sandbox = Sandbox(self.config)
            await self.sandbox.start()
        except BaseException as exc:  # report start-up failures to the waiting thread
            self._started.set_exception(exc)
        else:
            self._started.set_result(None)

    def start(self, timeout: float = 30.0) -> Sandbox:
        self._thread.start()
        self._started.result(timeout)
        assert self.sandbox is not None
        return self.sandbox

    def stop(self, timeout: float = 30.0) -> None:
        if not self._thread.is_alive():
            return
        if self.sandbox is not None:
            asyncio.run_coroutine_threadsafe(self.sandbox.stop(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


@contextmanager
def running_sandbox(config: SandboxConfig | None = None, **overrides: Any) -> Iterator[SandboxHandle]:
    """Start a sandbox on a free port of 127.0.0.1 (CRDs of manifests/ loaded) and stop it afterwards.

    `overrides` replace fields of the config (for example `validation=False`, `bookmark_interval=1.0`).
    """
    base = config or SandboxConfig(bookmark_interval=TEST_BOOKMARK_INTERVAL)
    runner = SandboxThread(replace(base, **overrides))
    sandbox = runner.start()
    directory = Path(tempfile.mkdtemp(prefix="sandbox-"))
    handle = SandboxHandle(
        url=sandbox.url,
        admin_url=sandbox.admin_url,
        kubeconfig_path=write_kubeconfig(directory / "kubeconfig.yaml", sandbox.url, ADMIN_USER),
        admin=SandboxAdmin(sandbox.admin_url),
        directory=directory,
        _runner=runner,
    )
    try:
        yield handle
    finally:
        runner.stop()
        shutil.rmtree(directory, ignore_errors=True)
