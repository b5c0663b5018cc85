"""A whole process's runtime: probes and metrics over HTTP, reconcile errors retried, graceful shutdown, leadership."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter

import aiohttp
import pytest

from sandbox.testing import SandboxHandle
from shared.models import RemediationRequest
from shared.runtime.client import KubeClient
from shared.runtime.controller import Result
from shared.runtime.informer import EventHandler
from shared.runtime.manager import Manager
from shared.runtime.store import object_key
from shared.settings import ControllerSettings
from tests import factories
from tests.integration.helpers import eventually

RR = RemediationRequest.RESOURCE


def settings(**overrides) -> ControllerSettings:
    values = {"bind_address": "127.0.0.1", "metrics_port": 0, "health_port": 0, "leader_election": False, "workers": 2}
    return ControllerSettings(**{**values, **overrides})


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


class Harness:
    def __init__(self, manager: Manager, namespace: str) -> None:
        self.manager = manager
        self.calls: Counter[str] = Counter()
        self.fail_first: dict[str, int] = {}
        self.slow: asyncio.Event | None = None
        informer = manager.informer(RR, namespaces=[namespace])
        controller = manager.controller("test", self.reconcile, resync=informer.store.keys)
        informer.add_event_handler(
            EventHandler(
                on_add=lambda o: controller.queue.add(object_key(o)),
                on_update=lambda _, o: controller.queue.add(object_key(o)),
            )
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(manager.run(self.stop))

    async def reconcile(self, key: str) -> Result:
        self.calls[key] += 1
        if self.fail_first.get(key, 0) >= self.calls[key]:
            raise RuntimeError(f"boom {self.calls[key]}")
        if self.slow is not None:
            self.slow.set()
            await asyncio.sleep(0.5)
        return Result.done()

    @property
    def port(self) -> int:
        return self.manager.server.bound_ports[0]

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def harness(kube: KubeClient, namespace: str):
    manager = Manager(kube, settings(), component="test", metrics_prefix="test_")
    harness = Harness(manager, namespace)
    await eventually(lambda: manager.server.bound_ports, what="the probe server")
    yield harness
    if not harness.task.done():
        await harness.shutdown()


async def test_probes_and_metrics_are_served(harness: Harness, kube: KubeClient, namespace: str):
    await eventually(lambda: harness.manager.controllers[0].running, what="controllers to start")
    assert await get(harness.port, "/healthz") == (200, "ok\n")
    status, body = await get(harness.port, "/readyz")
    assert status == 200 and "[+]informers-synced ok" in body
    await kube.create(RR, factories.remediation_request("rr-1", namespace))
    await eventually(lambda: harness.calls[f"{namespace}/rr-1"] >= 1, what="a reconcile")
    _, metrics = await get(harness.port, "/metrics")
    for series in (
        'workqueue_depth{name="test"}',
        'workqueue_adds_total{name="test"}',
        'test_reconcile_total{result="success"}',
        "test_informer_relists_total",
    ):
        assert series in metrics


async def test_a_failing_reconcile_is_retried_and_never_stops_the_process(
    harness: Harness, kube: KubeClient, namespace: str
):
    harness.fail_first[f"{namespace}/rr-bad"] = 3
    await kube.create(RR, factories.remediation_request("rr-bad", namespace))
    await kube.create(RR, factories.remediation_request("rr-good", namespace))
    await eventually(lambda: harness.calls[f"{namespace}/rr-bad"] == 4, what="three retries then success")
    assert harness.calls[f"{namespace}/rr-good"] >= 1
    registry = harness.manager.metrics.registry
    assert registry.get_sample_value("test_reconcile_total", {"result": "error"}) == 3
    assert registry.get_sample_value("workqueue_retries_total", {"name": "test"}) == 3
    assert not harness.task.done()


async def test_shutdown_finishes_the_reconcile_in_hand(harness: Harness, kube: KubeClient, namespace: str):
    await eventually(lambda: harness.manager.controllers[0].running, what="controllers to start")
    harness.slow = asyncio.Event()
    await kube.create(RR, factories.remediation_request("rr-slow", namespace))
    await asyncio.wait_for(harness.slow.wait(), 10)
    await harness.shutdown()
    registry = harness.manager.metrics.registry
    assert registry.get_sample_value("test_reconcile_total", {"result": "success"}) >= 1, "it was not cut short"


async def test_not_ready_until_the_informers_have_synced(kube: KubeClient, namespace: str, sandbox: SandboxHandle):
    await sandbox.admin.aio.fail_requests(code=500, count=3, resource="remediationrequests", verb="list")
    manager = Manager(kube, settings(), component="test", metrics_prefix="test_")
    harness = Harness(manager, namespace)
    await eventually(lambda: manager.server.bound_ports, what="the probe server")
    status, body = await get(harness.port, "/readyz")
    assert status == 503 and "[-]informers-synced failed" in body
    await eventually(lambda: manager.controllers[0].running, timeout=30, what="sync after the errors")
    assert (await get(harness.port, "/readyz"))[0] == 200
    await harness.shutdown()


async def test_only_the_leader_reconciles_and_a_standby_takes_over_on_shutdown(
    kube: KubeClient, namespace: str, sandbox: SandboxHandle
):
    def elected(identity: str) -> Manager:
        manager = Manager(
            kube,
            settings(leader_election=True, lease_namespace=namespace),
            component="test",
            metrics_prefix="test_",
            lease_name="test-manager",
        )
        assert manager.elector is not None
        manager.elector.identity = identity
        manager.elector.retry_period = 0.2
        return manager

    first = Harness(elected("first"), namespace)
    await eventually(lambda: first.manager.is_leader, what="first to lead")
    second = Harness(elected("second"), namespace)
    await eventually(lambda: second.manager.has_synced, what="the standby to sync")
    await kube.create(RR, factories.remediation_request("rr-1", namespace))
    await eventually(lambda: first.calls[f"{namespace}/rr-1"] >= 1, what="the leader to reconcile")
    assert second.calls[f"{namespace}/rr-1"] == 0
    assert (await get(second.port, "/readyz"))[0] == 200, "a synced standby is ready"
    await first.shutdown()
    await eventually(lambda: second.manager.is_leader, timeout=5, what="the standby to take over")
    await eventually(lambda: second.calls[f"{namespace}/rr-1"] >= 1, what="the new leader to resync")
    await second.shutdown()


@pytest.mark.parametrize(
    ("module", "setting", "env"),
    [
        ("orchestrator", "metrics-port", "KUBERNAUT_ORCHESTRATOR_METRICS_PORT"),
        ("orchestrator", "health-port", "KUBERNAUT_ORCHESTRATOR_HEALTH_PORT"),
        ("executor", "metrics-port", "KUBERNAUT_EXECUTOR_METRICS_PORT"),
        ("executor", "health-port", "KUBERNAUT_EXECUTOR_HEALTH_PORT"),
    ],
)
def test_a_busy_port_ends_the_process_with_one_line_naming_the_setting(
    sandbox: SandboxHandle, module: str, setting: str, env: str
):
    """Issue 17.8: a busy metrics or health port ended the process with a raw OSError traceback."""
    other = "health-port" if setting == "metrics-port" else "metrics-port"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNAUT_")}
        result = subprocess.run(
            [sys.executable, "-m", module, "--kubeconfig", str(sandbox.kubeconfig_path), "--log-format", "json",
             "--no-leader-election", "--bind-address", "127.0.0.1", f"--{setting}", str(port), f"--{other}", "0"],
            check=False, capture_output=True, text=True, env=environment, timeout=60,
        )  # fmt: skip
    assert result.returncode not in (0, None), result.stderr
    assert "Traceback" not in result.stderr
    plain = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(plain) == 1, result.stderr
    assert env in plain[0] and f"--{setting}" in plain[0] and f"127.0.0.1:{port}" in plain[0], plain[0]
    assert "in use" in plain[0]
