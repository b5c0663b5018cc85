"""Fixtures of the contract tests: a client, a namespace of their own, and the CRDs they need.

Against a real cluster (KUBERNAUT_TEST_KUBECONFIG) each module creates and removes its own namespace and applies
the CRDs that are missing; against the sandbox the same code runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient

from tests.contract import kube

REPOSITORY = Path(__file__).resolve().parents[2]
CRD_SOURCES = (REPOSITORY / "manifests" / "crds", REPOSITORY / "manifests" / "dev" / "tekton-crds.yaml")
WIDGETS_CRD = Path(__file__).with_name("widgets.yaml")


def crd_documents(paths: tuple[Path, ...]) -> list[dict[str, Any]]:
    files = [file for path in paths for file in (sorted(path.glob("*.yaml")) if path.is_dir() else [path])]
    documents = [doc for file in files for doc in yaml.safe_load_all(file.read_text())]
    return [doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]


async def _client(kubeconfig: Path) -> ApiClient:
    return await config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture
async def api(kubeconfig_path: Path) -> AsyncIterator[ApiClient]:
    """A kubernetes-asyncio client of the API server under test (admin user)."""
    client = await _client(kubeconfig_path)
    try:
        yield client
    finally:
        await client.close()


async def _ensure_crds(kubeconfig: Path, documents: list[dict[str, Any]]) -> None:
    client = await _client(kubeconfig)
    try:
        path = kube.resource_path("customresourcedefinitions", group="apiextensions.k8s.io", version="v1")
        for document in documents:
            name = document["metadata"]["name"]
            if (await kube.get(client, f"{path}/{name}")).status == 404:
                reply = await kube.request(client, "POST", path, body=document)
                assert reply.status in (201, 409), reply.body

            async def established(name: str = name) -> bool:
                reply = await kube.get(client, f"{path}/{name}")
                conditions = (reply.body.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            await kube.eventually(established, timeout=60)
            spec = document["spec"]
            served = kube.resource_path(
                spec["names"]["plural"], group=spec["group"], version=spec["versions"][0]["name"]
            )

            async def listable(served: str = served) -> bool:
                return (await kube.get(client, served)).status == 200

            await kube.eventually(listable, timeout=60)
    finally:
        await client.close()


@pytest.fixture(scope="module")
def crds(kubeconfig_path: Path) -> None:
    """Our CRDs, the Tekton fixtures and the contract tests' Widget CRD, applied where missing and Established."""
    documents = [*crd_documents(CRD_SOURCES), yaml.safe_load(WIDGETS_CRD.read_text())]
    asyncio.run(_ensure_crds(kubeconfig_path, documents))


async def _create_namespace(kubeconfig: Path, name: str) -> None:
    client = await _client(kubeconfig)
    try:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        reply = await kube.request(client, "POST", "/api/v1/namespaces", body=body)
        assert reply.status == 201, reply.body
    finally:
        await client.close()


async def _delete_namespace(kubeconfig: Path, name: str) -> None:
    client = await _client(kubeconfig)
    try:
        await kube.request(client, "DELETE", f"/api/v1/namespaces/{name}")
    finally:
        await client.close()


@pytest.fixture(scope="module")
def namespace(kubeconfig_path: Path, crds: None) -> Iterator[str]:
    """A namespace of this test module (random suffix), deleted afterwards."""
    name = f"contract-{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_namespace(kubeconfig_path, name))
    yield name
    asyncio.run(_delete_namespace(kubeconfig_path, name))


@pytest.fixture
def unique() -> str:
    """A name no other test uses."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ancient_version(request: pytest.FixtureRequest, on_real_cluster: bool) -> str:
    """A resourceVersion older than the server's watch history: "1" (long compacted on a real cluster; on the
    sandbox, after its history is compacted)."""
    if not on_real_cluster:
        request.getfixturevalue("sandbox").admin.compact_history()
    return "1"
