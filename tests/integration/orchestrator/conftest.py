"""The orchestrator in this test's event loop, against the module's sandbox, watching only the test's namespace.

Tests play the executor themselves: they move WorkflowExecutions through their phases with status patches, so each
routing path is driven exactly. (The end-to-end tests run the real executor and the Tekton simulator.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.app import setup
from orchestrator.metrics import PREFIX
from orchestrator.settings import OrchestratorSettings
from sandbox.testing import SandboxHandle
from shared.kubetime import format_time
from shared.models import NotificationRequest, RemediationRequest, WorkflowExecution
from shared.runtime.client import KubeClient
from shared.runtime.store import KubeDict
from tests import factories
from tests.integration.helpers import ObjectScene, eventually
from tests.integration.inloop import Start, starter

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
NR = NotificationRequest.RESOURCE
TERMINAL = {"Completed", "Failed", "TimedOut", "Skipped"}


@dataclass
class Scene(ObjectScene):
    """The API as a test sees it: create requests, read them, play the executor."""

    RESOURCE = RR

    async def request(self, name: str, **options: Any) -> KubeDict:
        return await self.kube.create(RR, factories.remediation_request(name, self.namespace, **options))

    async def blocked(self, name: str, reason: str, timeout: float = 15) -> dict[str, Any]:
        return await self.until(
            name, lambda s: s.get("phase") == "Blocked" and s.get("blockReason") == reason, f"Blocked {reason}", timeout
        )

    async def executions(self) -> list[KubeDict]:
        return list((await self.kube.list(WFE, self.namespace))["items"])

    async def notifications(self) -> list[KubeDict]:
        return list((await self.kube.list(NR, self.namespace))["items"])

    async def execution_of(self, rr: str) -> str:
        """The name of request `rr`'s WorkflowExecution, from its status (waits until it has one)."""

        async def named() -> str | None:
            ref = (await self.status(rr)).get("workflowExecutionRef") or {}
            return ref.get("name")

        return await eventually(named, what=f"{rr} to name its WorkflowExecution")

    async def run(self, rr: str) -> None:
        """The executor starts the run of request `rr`'s execution."""
        wfe = await self.execution_of(rr)
        await self.kube.patch_status(WFE, self.namespace, wfe, {"phase": "Running", "startTime": _now()})

    async def complete(self, rr: str) -> None:
        wfe = await self.execution_of(rr)
        await self.kube.patch_status(WFE, self.namespace, wfe, {"phase": "Completed", "completionTime": _now()})

    async def fail(self, rr: str, *, reason: str = "TaskFailed", was_execution_failure: bool = True) -> None:
        wfe = await self.execution_of(rr)
        details = {"reason": reason, "message": f"{reason} in the test", "wasExecutionFailure": was_execution_failure}
        await self.kube.patch_status(
            WFE, self.namespace, wfe, {"phase": "Failed", "completionTime": _now(), "failureDetails": details}
        )

    async def annotate(self, resource: Any, name: str, key: str, value: str) -> None:
        await self.kube.patch(resource, self.namespace, name, {"metadata": {"annotations": {key: value}}})


def _now() -> str:
    return format_time(datetime.now(UTC))


@pytest.fixture
def scene(kube: KubeClient, namespace: str) -> Scene:
    return Scene(kube, namespace)


StartOrchestrator = Start


@pytest.fixture
async def start_orchestrator(sandbox: SandboxHandle, namespace: str) -> AsyncIterator[StartOrchestrator]:
    """Start an orchestrator with settings overrides (e.g. `recently_remediated_cooldown="2s"`); stopped after."""
    defaults = {"watched_namespaces": [namespace], "workers": 4, "backoff_jitter_percent": 0}
    async with starter(
        sandbox.kubeconfig_path,
        OrchestratorSettings,
        setup,
        component="kubernaut-orchestrator",
        prefix=PREFIX,
        defaults=defaults,
    ) as start:
        yield start
