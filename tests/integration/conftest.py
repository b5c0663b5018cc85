"""Fixtures for tests against the sandbox API server: a client per test and a fresh namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.testing import SandboxHandle
from shared.runtime.client import KubeClient
from tests.integration.helpers import create_namespace, delete_namespace


@pytest.fixture
async def kube(sandbox: SandboxHandle) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(sandbox.kubeconfig_path, user_agent="tests")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = await create_namespace(kube)
    try:
        yield name
    finally:
        await delete_namespace(kube, name)
