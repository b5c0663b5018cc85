"""`kubectl kubernaut` as a user runs it: a real subprocess against the module's sandbox, next to an orchestrator
running in the test's loop (tests/integration/orchestrator's fixtures) while the test plays the executor.

The orchestrator's settings are recorded in a Deployment in the test's namespace, and the plugin reads them from
there (`--settings-from`), so both decide with the same settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.testing import SandboxHandle
from shared.apiresource import ApiResource
from shared.runtime.client import KubeClient
from tests.integration.orchestrator.conftest import (  # noqa: F401 (fixtures)
    NR,
    RR,
    WFE,
    Scene,
    StartOrchestrator,
    scene,
    start_orchestrator,
)

DEPLOYMENTS = ApiResource("apps", "v1", "Deployment", "deployments")
BIN = Path(sys.executable).parent
ORCHESTRATOR_ENV = {"KUBERNAUT_ORCHESTRATOR_BACKOFF_JITTER_PERCENT": "0"}


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


@dataclass
class Plugin:
    """Runs `kubectl-kubernaut` (the console script) with the test's kubeconfig and namespace."""

    kubeconfig: Path
    namespace: str
    settings_from: str
    argv0: list[str] = field(default_factory=lambda: [str(BIN / "kubectl-kubernaut")])

    async def __call__(self, *args: str, kubeconfig: Path | None = None, env: dict[str, str] | None = None) -> Ran:
        argv = [*self.argv0, *args, "--kubeconfig", str(kubeconfig or self.kubeconfig)]
        if "-A" not in args and "-n" not in args:
            argv += ["-n", self.namespace]
        if args[0] in ("explain", "status") and "--settings-from" not in args:
            argv += ["--settings-from", self.settings_from]
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    async def json(self, *args: str, **options: Any) -> Any:
        return (await self(*args, "-o", "json", **options)).json


def watching(namespace: str, **env: str) -> dict[str, str]:
    """The env of an orchestrator as the fixtures run it: watching only the test's namespace (other tests' objects
    on the same targets live in other namespaces of the module's sandbox)."""
    return {**ORCHESTRATOR_ENV, "KUBERNAUT_ORCHESTRATOR_WATCHED_NAMESPACES": namespace, **env}


def orchestrator_deployment(namespace: str, env: dict[str, str]) -> dict[str, Any]:
    """The orchestrator's Deployment as manifests/base/orchestrator.yaml writes it, with `env`."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "kubernaut-orchestrator", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "kubernaut-orchestrator"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "kubernaut-orchestrator"}},
                "spec": {
                    "containers": [
                        {
                            "name": "orchestrator",
                            "image": "kubernaut-controlplane:0.1.0",
                            "command": ["kubernaut-orchestrator"],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture
async def plugin(sandbox: SandboxHandle, kube: KubeClient, namespace: str) -> Plugin:
    await kube.create(DEPLOYMENTS, orchestrator_deployment(namespace, watching(namespace)))
    return Plugin(sandbox.kubeconfig_path, namespace, f"{namespace}/kubernaut-orchestrator")


__all__ = ["NR", "RR", "WFE", "Plugin", "Ran", "Scene", "StartOrchestrator", "watching"]
