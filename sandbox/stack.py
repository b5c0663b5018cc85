"""The whole system as child processes against one API server: orchestrator, executor, Tekton simulator.

The demo, the end-to-end tests and the chaos suite all start processes through this module, so they run exactly
what a user runs (`kubernaut-orchestrator`, `kubernaut-executor`, `python -m sandbox tekton`), configured the way
a user configures them: environment variables, a kubeconfig per process (whose bearer token names the
ServiceAccount the manifests give that process, so the sandbox's audit log reads like a cluster's).

    stack = Stack(sandbox.kubeconfig_for, directory)
    orchestrator = stack.orchestrator(CONSECUTIVE_FAILURE_COOLDOWN="20s")
    orchestrator.start(); orchestrator.wait_ready()
    ...
    stack.stop()
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from prometheus_client.parser import text_string_to_metric_families

SYSTEM_NAMESPACE: Final = "kubernaut-system"
EXECUTION_NAMESPACE: Final = "kubernaut-workflows"
USERS: Final = {
    "orchestrator": f"system:serviceaccount:{SYSTEM_NAMESPACE}:kubernaut-orchestrator",
    "executor": f"system:serviceaccount:{SYSTEM_NAMESPACE}:kubernaut-executor",
    "tekton": "system:serviceaccount:tekton-pipelines:tekton-pipelines-controller",
}
_ENV_PREFIX: Final = {"orchestrator": "KUBERNAUT_ORCHESTRATOR_", "executor": "KUBERNAUT_EXECUTOR_"}


_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing is bound to now, for a process about to listen on it.

    Taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), not with `bind(0)`: a port from that
    range can be handed to any outgoing connection between this probe and the process's own bind (found when a chaos
    run's orchestrator failed on a busy health port), while no connection is ever given a port below it. Never the
    same port twice in one process (two ports asked for at once must differ)."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default
    candidates = list(range(10000, max(ephemeral_low, 10001)))
    random.shuffle(candidates)
    for port in candidates:
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 between 10000 and {ephemeral_low}")


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text as (sample name, labels) -> value, e.g. `("x_total", frozenset({("reason", "A")}))`."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def leading(metrics_text: str) -> bool:
    """Whether a process's /metrics say it holds its Lease (`<prefix>leader_election_is_leader{lease=...} 1`)."""
    return any(
        name.endswith("leader_election_is_leader") and value == 1
        for (name, _), value in metric_samples(metrics_text).items()
    )


class ProcessFailed(RuntimeError):
    """A child process exited when it should be running, or did not become ready in time."""


class Component:
    """One child process: started, probed, signalled, restarted; its output goes to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        *,
        health_port: int | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.health_port = health_port
        self.metrics_port = metrics_port
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Component:
        if self.running:
            raise ProcessFailed(f"{self.name} is already running")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.starts += 1
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /readyz answers 200 (informers synced; leading or a synced standby)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise ProcessFailed(f"{self.name} exited with {self.returncode()}; log: {self.log_path}")
            if self.health_port is None or self.probe("/readyz") == 200:
                return
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{self.name} not ready after {timeout}s; log: {self.log_path}")
            time.sleep(0.05)

    def wait_leading(self, timeout: float = 30.0) -> None:
        """Until its /metrics say it holds its Lease (leader election on)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise ProcessFailed(f"{self.name} exited with {self.returncode()}; log: {self.log_path}")
            with contextlib.suppress(OSError):
                if self.is_leader():
                    return
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{self.name} not leading after {timeout}s; log: {self.log_path}")
            time.sleep(0.05)

    def probe(self, path: str) -> int | None:
        """The status code of GET `path` on the health port (None when nothing answers)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def metrics(self) -> str:
        """The text of /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return bytes(response.read()).decode()

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """/metrics as (sample name, labels) -> value."""
        return metric_samples(self.metrics())

    def is_leader(self) -> bool:
        return leading(self.metrics())

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in `timeout`. Returns the exit code."""
        return self._stop(signal.SIGTERM, timeout)

    def kill(self) -> int:
        return self._stop(signal.SIGKILL, 10.0)

    def _stop(self, signum: int, timeout: float) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return int(self.process.returncode)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    """Builds the system's processes for one API server; `stop()` ends whichever still run."""

    def __init__(self, kubeconfig_for: Callable[[str], Path], directory: Path) -> None:
        self.kubeconfig_for = kubeconfig_for
        self.directory = directory
        self.components: list[Component] = []

    def orchestrator(self, name: str = "orchestrator", **settings: str) -> Component:
        """An orchestrator; `settings` are OrchestratorSettings as env names without the prefix."""
        return self._controller("orchestrator", name, "orchestrator", settings)

    def executor(self, name: str = "executor", **settings: str) -> Component:
        """An executor; `settings` are ExecutorSettings as env names without the prefix."""
        return self._controller("executor", name, "executor", settings)

    def tekton(self, name: str = "tekton", duration: float = 1.0) -> Component:
        """The Tekton simulator (runs last `duration` seconds unless a run's SIM_DURATION says otherwise)."""
        argv = [sys.executable, "-m", "sandbox", "tekton", "--log-format", "json", "--duration", str(duration)]
        argv += ["--kubeconfig", str(self.kubeconfig_for(USERS["tekton"]))]
        return self._add(Component(name, argv, {}, self.directory / f"{name}.log"))

    def _controller(self, kind: str, name: str, module: str, settings: dict[str, str]) -> Component:
        """`python -m <module>` on free ports, as the ServiceAccount user of `kind`."""
        prefix = _ENV_PREFIX[kind]
        health_port, metrics_port = free_port(), free_port()
        env = {
            "KUBECONFIG": str(self.kubeconfig_for(USERS[kind])),
            f"{prefix}BIND_ADDRESS": "127.0.0.1",
            f"{prefix}METRICS_PORT": str(metrics_port),
            f"{prefix}HEALTH_PORT": str(health_port),
            f"{prefix}LOG_FORMAT": "json",
            f"{prefix}LEADER_ELECTION": "false",
            f"{prefix}LEASE_NAMESPACE": SYSTEM_NAMESPACE,
            **{f"{prefix}{key.upper()}": value for key, value in settings.items()},
        }
        argv = [sys.executable, "-m", module]
        log_path = self.directory / f"{name}.log"
        return self._add(Component(name, argv, env, log_path, health_port=health_port, metrics_port=metrics_port))

    def _add(self, component: Component) -> Component:
        self.components.append(component)
        return component

    def stop(self) -> dict[str, int]:
        """SIGTERM every component still running (in reverse start order); their exit codes."""
        return {component.name: component.terminate() for component in reversed(self.components)}
