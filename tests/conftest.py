"""Fixtures for every suite: an API server to talk to (a sandbox per module, or a real cluster).

Set KUBERNAUT_TEST_KUBECONFIG=/path/to/kubeconfig to run the tests that talk to an API server against a real
cluster instead; tests marked `sandbox_only` (fault injection, inspection) are then skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.testing import SandboxHandle, running_sandbox

REAL_CLUSTER_KUBECONFIG_ENV = "KUBERNAUT_TEST_KUBECONFIG"


def real_cluster_kubeconfig() -> Path | None:
    """The kubeconfig of the real cluster to test against, if one was given."""
    value = os.environ.get(REAL_CLUSTER_KUBECONFIG_ENV)
    return Path(value) if value else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if real_cluster_kubeconfig() is None:
        return
    skip = pytest.mark.skip(reason=f"needs the sandbox's admin API ({REAL_CLUSTER_KUBECONFIG_ENV} is set)")
    for item in items:
        if "sandbox_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    """A sandbox API server for this test module (CRDs of manifests/ loaded); `sandbox.admin` injects faults."""
    with running_sandbox() as handle:
        yield handle


@pytest.fixture(scope="module")
def kubeconfig_path(request: pytest.FixtureRequest) -> Path:
    """The kubeconfig of the API server under test: the real cluster's if given, else this module's sandbox."""
    real = real_cluster_kubeconfig()
    if real is not None:
        return real
    handle: SandboxHandle = request.getfixturevalue("sandbox")
    return handle.kubeconfig_path


@pytest.fixture(scope="module")
def on_real_cluster() -> bool:
    return real_cluster_kubeconfig() is not None
