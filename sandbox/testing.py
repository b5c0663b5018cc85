"""A sandbox for tests: in a background thread (`running_sandbox`) or a separate process (`sandbox_process`).

    with running_sandbox() as sandbox:
        client = await kubernetes_asyncio.config.new_client_from_config(str(sandbox.kubeconfig_path))
        sandbox.admin.drop_watches()

The thread's loop is independent of the test's (pytest-asyncio gives each test its own), so one sandbox can
serve a whole test module. A separate process shares no interpreter (no GIL) with the code under test, which
suits benchmarks and chaos tests. Either way faults and inspection go through `admin`, over HTTP.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from sandbox.client import SandboxAdmin
from sandbox.kubeconfig import ADMIN_USER, write_kubeconfig
from sandbox.server import Sandbox, SandboxConfig

TEST_BOOKMARK_INTERVAL = 2.0  # seconds; short so tests see periodic bookmarks quickly


class _Runner(Protocol):
    def stop(self) -> None: ...


@dataclass
class SandboxHandle:
    """A running sandbox: where it listens, kubeconfigs for it, its admin client."""

    url: str
    admin_url: str
    kubeconfig_path: Path
    admin: SandboxAdmin
    directory: Path
    _runner: _Runner = field(repr=False)
    ca_pem: bytes | None = None  # the CA of the serving certificate, when the sandbox serves HTTPS
    user_tokens: dict[str, str] = field(default_factory=dict)  # user -> token, when the sandbox takes only those

    @property
    def ca_path(self) -> Path | None:
        """`ca_pem` in a file (as a pod's ca.crt), or None for plain HTTP."""
        if self.ca_pem is None:
            return None
        path = self.directory / "ca.crt"
        if not path.exists():
            path.write_bytes(self.ca_pem)
        return path

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig whose bearer token identifies `user` (the name the audit log records): the token the
        sandbox was started with for that user, else the user's name (refused by a sandbox started with tokens)."""
        path = self.directory / f"kubeconfig-{_safe(user)}.yaml"
        if not path.exists():
            write_kubeconfig(path, self.url, user, ca_pem=self.ca_pem, token=self.user_tokens.get(user))
        return path


def _admin_credentials(config: SandboxConfig) -> tuple[str, str]:
    """(token, user) of the kubeconfig a sandbox is started with: the first token it takes, if given any."""
    return (ADMIN_USER, ADMIN_USER) if not config.tokens else config.tokens[0]

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
    config = replace(base, **overrides)
    runner = SandboxThread(config)
    sandbox = runner.start()
    directory = Path(tempfile.mkdtemp(prefix="sandbox-"))
    token, user = _admin_credentials(config)
    handle = SandboxHandle(
        url=sandbox.url,
        admin_url=sandbox.admin_url,
        kubeconfig_path=write_kubeconfig(
            directory / "kubeconfig.yaml", sandbox.url, user, ca_pem=sandbox.ca_pem, token=token
        ),
        admin=SandboxAdmin(sandbox.admin_url),
        directory=directory,
        _runner=runner,
        ca_pem=sandbox.ca_pem,
        user_tokens={user: token for token, user in reversed(config.tokens or ())},
    )
    try:
        yield handle
    finally:
        runner.stop()
        shutil.rmtree(directory, ignore_errors=True)


class SandboxProcess:
    """Runs `python -m sandbox serve` as a child process."""

    def __init__(self, config: SandboxConfig, kubeconfig: Path) -> None:
        arguments = [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--port",
            str(config.port),
            "--admin-port",
            str(config.admin_port),
            "--kubeconfig",
            str(kubeconfig),
            "--bookmark-interval",
            str(config.bookmark_interval),
            "--history-capacity",
            str(config.history_capacity),
            "--log-level",
            "warning",
            "--crds",
            *(str(path) for path in config.crds),
        ]
        for namespace in config.namespaces:
            arguments += ["--namespace", namespace]
        if not config.validation:
            arguments.append("--no-validation")
        if config.tls:
            arguments.append("--tls")
        for token, user in config.tokens or ():
            arguments += ["--token", f"{token}={user}"]
        self._process = subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True)
        self.ca_path: Path | None = None

    def start(self) -> tuple[str, str]:
        """Wait until it serves; its API and admin URLs."""
        assert self._process.stdout is not None
        urls: dict[str, str] = {}
        while len(urls) < 2:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"python -m sandbox serve exited with {self._process.wait()} before serving")
            label, _, value = line.partition(":")
            if label in ("sandbox API", "sandbox admin"):
                urls[label] = value.split()[0]
            elif label == "sandbox CA":  # printed before the admin URL
                self.ca_path = Path(value.split()[0])
        return urls["sandbox API"], urls["sandbox admin"]

    def stop(self, timeout: float = 30.0) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


@contextmanager
def sandbox_process(config: SandboxConfig | None = None, **overrides: Any) -> Iterator[SandboxHandle]:
    """Like running_sandbox, with the sandbox in a separate process (`python -m sandbox serve`)."""
    base = config or SandboxConfig(bookmark_interval=TEST_BOOKMARK_INTERVAL)
    directory = Path(tempfile.mkdtemp(prefix="sandbox-"))
    kubeconfig = directory / "kubeconfig.yaml"
    config = replace(base, **overrides)
    runner = SandboxProcess(config, kubeconfig)
    try:
        url, admin_url = runner.start()
        yield SandboxHandle(
            url=url,
            admin_url=admin_url,
            kubeconfig_path=kubeconfig,
            admin=SandboxAdmin(admin_url),
            directory=directory,
            _runner=runner,
            ca_pem=runner.ca_path.read_bytes() if runner.ca_path else None,
            user_tokens={user: token for token, user in reversed(config.tokens or ())},
        )
    finally:
        runner.stop()
        shutil.rmtree(directory, ignore_errors=True)
