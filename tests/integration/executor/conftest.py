"""The executor and the Tekton simulator in this test's event loop, against the module's sandbox.

WorkflowExecutions live in the test's namespace, PipelineRuns in a second fresh namespace (the executor's execution
namespace), so every test has its own per-target locks. Tests create WorkflowExecutions as the orchestrator would;
a run's `SIM_*` parameters tell the simulator how it ends. Every WorkflowExecution status the watch delivers during a
test is recorded and checked afterwards for routing state (counters, cooldowns, backoff), which the executor must
never write.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from executor.app import setup
from executor.metrics import PREFIX
from executor.pipelinerun import pipeline_run_name
from executor.settings import ExecutorSettings
from sandbox.audit import AuditRecord
from sandbox.stack import USERS
from sandbox.testing import SandboxHandle
from shared.models import PipelineRun, TaskRun, WorkflowExecution
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.informer import EventHandler, Informer
from shared.runtime.store import KubeDict
from tests import factories
from tests.integration.helpers import ObjectScene, create_namespace, delete_namespace, eventually
from tests.integration.inloop import InLoopController, InLoopSimulator, Start, start_simulator, starter
from tests.integration.orchestrator.conftest import start_orchestrator  # noqa: F401 (a fixture: the orchestrator beside the executor)

WFE = WorkflowExecution.RESOURCE
PR = PipelineRun.RESOURCE
TR = TaskRun.RESOURCE
TERMINAL = {"Completed", "Failed"}
# Any of these in a status key is routing state (SPEC 2: "no consecutiveFailures or nextAllowedExecution").
ROUTING_STATE = re.compile(r"consecutive|nextallowed|cooldown|backoff|failurecount|retr(y|ies)|attempt", re.I)


def routing_state_keys(value: Any, path: str = "status") -> Iterator[str]:
    """Every key path under `value` whose name looks like a counter, cooldown or backoff field."""
    if isinstance(value, dict):
        for key, item in value.items():
            if ROUTING_STATE.search(str(key)):
                yield f"{path}.{key}"
            yield from routing_state_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from routing_state_keys(item, f"{path}[{index}]")


@dataclass
class Scene(ObjectScene):
    """The API as a test sees it: create WorkflowExecutions, read them and their PipelineRuns."""

    RESOURCE = WFE
    sandbox: SandboxHandle
    runs_namespace: str
    statuses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, status) as watched
    versions: set[tuple[str, str]] = field(default_factory=set)  # (name, resourceVersion) as watched

    async def execution(
        self,
        name: str,
        *,
        target: str | None = None,
        sim: dict[str, str] | None = None,
        parameters: dict[str, str] | None = None,
        **spec_extra: Any,
    ) -> KubeDict:
        """Create a WorkflowExecution (target `<namespace>/deployment/<name>` unless given); `sim` are SIM_ params."""
        params = {**(parameters or {}), **{f"SIM_{key.upper()}": value for key, value in (sim or {}).items()}}
        body = factories.workflow_execution(
            name,
            self.namespace,
            rr_name=name,
            target=target or self.target(name),
            parameters=params or None,
            **spec_extra,
        )
        return await self.kube.create(WFE, body)

    def target(self, name: str) -> str:
        return f"{self.namespace}/deployment/{name}"

    async def started(self, name: str) -> dict[str, Any]:
        """Running, with the PipelineRun's start time copied in (the simulator started the run)."""
        return await self.until(name, lambda s: s.get("phase") == "Running" and "startTime" in s, "running")

    async def run(self, target: str) -> KubeDict:
        """The PipelineRun of `target` (its per-target lock name)."""
        return await self.kube.get(PR, self.runs_namespace, pipeline_run_name(target))

    async def run_exists(self, target: str) -> bool:
        try:
            await self.run(target)
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    async def runs(self) -> list[KubeDict]:
        return list((await self.kube.list(PR, self.runs_namespace))["items"])

    async def task_runs(self) -> list[KubeDict]:
        return list((await self.kube.list(TR, self.runs_namespace))["items"])

    async def has_events(self, name: str, *reasons: str) -> list[str]:
        async def all_there() -> list[str] | None:
            seen = await self.events(name)
            return seen if set(reasons) <= set(seen) else None

        return await eventually(all_there, what=f"events {reasons} on {name}")

    def creates(self) -> list[AuditRecord]:
        """Every PipelineRun create the executor sent to the execution namespace, in order."""
        return [
            r
            for r in self.sandbox.admin.audit(user=USERS["executor"])
            if (r.verb, r.resource, r.namespace) == ("create", "pipelineruns", self.runs_namespace)
        ]

    async def phases(self, name: str) -> list[str]:
        """The phases `name` went through, as watched (repeats folded), once the watch has caught up with it."""
        version = (await self.get(name))["metadata"]["resourceVersion"]
        await eventually(lambda: (name, version) in self.versions, what=f"the watch to deliver {name}@{version}")
        seen: list[str] = []
        for watched, status in self.statuses:
            phase = status.get("phase")
            if watched == name and phase and (not seen or seen[-1] != phase):
                seen.append(phase)
        return seen


@pytest.fixture
async def runs_namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = await create_namespace(kube, "runs")
    try:
        yield name
    finally:
        await delete_namespace(kube, name)


@pytest.fixture
async def scene(kube: KubeClient, sandbox: SandboxHandle, namespace: str, runs_namespace: str) -> AsyncIterator[Scene]:
    """The scene, plus a watch recording every WorkflowExecution status; none may carry routing state."""
    scene = Scene(kube, namespace, sandbox=sandbox, runs_namespace=runs_namespace)
    recorder = Informer(kube, WFE, namespaces=[namespace])

    def record(obj: KubeDict) -> None:
        scene.statuses.append((obj["metadata"]["name"], obj.get("status") or {}))
        scene.versions.add((obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    recorder.add_event_handler(EventHandler(on_add=record, on_update=lambda _, new: record(new)))
    task = asyncio.create_task(recorder.run())
    await recorder.wait_for_sync()
    try:
        yield scene
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    offending = sorted({key for _, status in scene.statuses for key in routing_state_keys(status)})
    assert not offending, f"the executor wrote routing state into WorkflowExecution status: {offending}"


StartExecutor = Start


@pytest.fixture
async def start_executor(sandbox: SandboxHandle, namespace: str, runs_namespace: str) -> AsyncIterator[StartExecutor]:
    """Start an executor (as the executor's ServiceAccount) with settings overrides; stopped after."""
    defaults = {
        "watched_namespaces": [namespace],
        "execution_namespace": runs_namespace,
        "workers": 4,
        # The tests' workflows run as the default runner or as runner-sa; test_allowlists.py tests the settings.
        "allowed_service_accounts": ["kubernaut-workflow-runner", "runner-sa"],
    }
    async with starter(
        sandbox.kubeconfig_for(USERS["executor"]),
        ExecutorSettings,
        setup,
        component="kubernaut-executor",
        prefix=PREFIX,
        defaults=defaults,
    ) as start:
        yield start


StartSimulator = Callable[[], Awaitable[InLoopSimulator]]


@pytest.fixture
async def start_tekton(sandbox: SandboxHandle, runs_namespace: str) -> AsyncIterator[StartSimulator]:
    """Start a Tekton simulator on the execution namespace (runs last 0.2 s by default); stopped after."""
    running: list[InLoopSimulator] = []

    async def start() -> InLoopSimulator:
        simulator = await start_simulator(sandbox.kubeconfig_for(USERS["tekton"]), [runs_namespace])
        running.append(simulator)
        return simulator

    yield start
    for simulator in running:
        await simulator.stop()


@pytest.fixture
async def executor(start_executor: StartExecutor, start_tekton: StartSimulator) -> InLoopController:
    """An executor with default settings and a Tekton simulator, both running."""
    await start_tekton()
    return await start_executor()
