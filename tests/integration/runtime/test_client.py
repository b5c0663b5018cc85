"""The client against the sandbox: statuses checked by us, conditional status writes, idempotent creates."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.kubeconfig import write_kubeconfig
from shared.models import RemediationRequest
from shared.runtime.client import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    RESPONSE_TIMEOUT,
    ApiError,
    KubeClient,
    merge_patch,
    retry_on_conflict,
)
from tests import factories

RR = RemediationRequest.RESOURCE


async def test_errors_are_raised_with_the_status_reason_and_message(kube: KubeClient, namespace: str):
    with pytest.raises(ApiError) as caught:
        await kube.get(RR, namespace, "missing")
    assert caught.value.not_found and caught.value.reason == "NotFound"
    bad = factories.remediation_request("bad", namespace)
    bad["spec"]["signalFingerprint"] = "XYZ"
    with pytest.raises(ApiError) as caught:
        await kube.create(RR, bad)
    assert caught.value.status == 422 and "spec.signalFingerprint" in caught.value.message


async def test_status_patch_lands_only_on_the_version_it_was_based_on(kube: KubeClient, namespace: str):
    created = await kube.create(RR, factories.remediation_request("rr", namespace))
    version = created["metadata"]["resourceVersion"]
    updated = await kube.patch_status(RR, namespace, "rr", {"phase": "Pending"}, resource_version=version)
    assert updated["status"]["phase"] == "Pending"
    with pytest.raises(ApiError) as caught:
        await kube.patch_status(RR, namespace, "rr", {"phase": "Blocked"}, resource_version=version)
    assert caught.value.conflict and not caught.value.already_exists


async def test_retry_on_conflict_re_reads_and_succeeds(kube: KubeClient, namespace: str):
    created = await kube.create(RR, factories.remediation_request("rr", namespace))
    stale = created["metadata"]["resourceVersion"]
    await kube.patch_status(RR, namespace, "rr", {"phase": "Pending"})
    attempts = []

    async def attempt() -> dict:
        version = stale if not attempts else (await kube.get(RR, namespace, "rr"))["metadata"]["resourceVersion"]
        attempts.append(version)
        return await kube.patch_status(RR, namespace, "rr", {"phase": "Blocked"}, resource_version=version)

    result = await retry_on_conflict(attempt)
    assert result["status"]["phase"] == "Blocked"
    assert len(attempts) == 2


async def test_create_or_get_adopts_an_existing_object(kube: KubeClient, namespace: str):
    first, created = await kube.create_or_get(RR, factories.remediation_request("rr", namespace))
    again, created_again = await kube.create_or_get(RR, factories.remediation_request("rr", namespace))
    assert created and not created_again
    assert again["metadata"]["uid"] == first["metadata"]["uid"]


async def test_delete_with_a_stale_uid_precondition_is_refused(kube: KubeClient, namespace: str):
    await kube.create(RR, factories.remediation_request("rr", namespace))
    with pytest.raises(ApiError) as caught:
        await kube.delete(RR, namespace, "rr", uid="not-its-uid")
    assert caught.value.status == 409


async def test_merge_patch_removes_keys_with_null(kube: KubeClient, namespace: str):
    await kube.create(RR, factories.remediation_request("rr", namespace))
    await kube.patch_status(RR, namespace, "rr", {"phase": "Blocked", "blockReason": "ResourceBusy"})
    old = (await kube.get(RR, namespace, "rr"))["status"]
    patch = merge_patch(old, {"phase": "Executing"})
    assert patch == {"phase": "Executing", "blockReason": None}
    updated = await kube.patch_status(RR, namespace, "rr", patch)
    assert updated["status"] == {"phase": "Executing"}


async def test_connection_failures_are_api_errors_with_status_zero():
    from kubernetes_asyncio.client import ApiClient, Configuration

    configuration = Configuration()
    configuration.host = "http://127.0.0.1:1"
    client = KubeClient(ApiClient(configuration))
    with pytest.raises(ApiError) as caught:
        await client.get(RR, "default", "x")
    assert caught.value.status == 0 and caught.value.transient
    await client.close()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A server that accepts connections, reads what it is sent, and never answers: a hung API server, or the far
    end of a connection that died without a FIN."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_stream_whose_response_never_starts_fails_instead_of_hanging(silent_server: str, tmp_path: Path):
    """Issue 18.2: `stream()` set no timeout for the response headers, so a watch on a silent server hung for good."""
    client = await KubeClient.connect(write_kubeconfig(tmp_path / "kubeconfig", silent_server), user_agent="tests")
    try:
        async with asyncio.timeout(30):  # the test's own guard: without the fix the stream hangs
            with pytest.raises(ApiError) as caught:
                async with client.stream(RR.path("default"), query={"watch": "true"}, response_timeout=0.5):
                    pass
    finally:
        await client.close()
    assert caught.value.status == 0 and caught.value.reason == RESPONSE_TIMEOUT
    assert caught.value.transient, "the caller retries it like any lost connection"


async def test_a_stream_connection_has_tcp_keepalive(kube: KubeClient, namespace: str):
    async with kube.stream(RR.path(namespace), query={"watch": "true", "timeoutSeconds": 5}) as response:
        connection = response.connection
        assert connection is not None and connection.transport is not None
        sock = connection.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_COUNT


async def test_a_netrc_entry_for_the_api_server_neither_breaks_nor_replaces_the_token(
    sandbox, namespace: str, tmp_path, monkeypatch
):
    """Kubernetes credentials come from the kubeconfig only. aiohttp with `trust_env` (kubernetes-asyncio's session)
    read ~/.netrc on every request, and an entry for the API server's host made every request fail: Basic auth from
    netrc plus our bearer header is a ValueError in aiohttp, not even an API error."""
    from yarl import URL

    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {URL(sandbox.url).host} login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with await KubeClient.connect(sandbox.kubeconfig_path, user_agent="tests") as client:
        created = await client.create(RR, factories.remediation_request("rr", namespace))
        assert (await client.get(RR, namespace, "rr"))["metadata"]["uid"] == created["metadata"]["uid"]


async def test_a_proxy_from_the_environment_is_used(sandbox, tmp_path, monkeypatch):
    """HTTP(S)_PROXY is honoured as kubernetes-asyncio's session did (read once, not per request): here a proxy
    that does not answer, so the request fails to connect."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with await KubeClient.connect(sandbox.kubeconfig_path, user_agent="tests") as client:
        with pytest.raises(ApiError) as caught:
            await client.get(RR, "default", "x")
    assert caught.value.status == 0 and "127.0.0.1:1" in caught.value.message
