"""The sandbox refuses a MicroTime without six fractional digits wherever a body is decoded: create, update, patch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient

from sandbox.testing import SandboxHandle
from tests.contract import kube

SECONDS_ONLY = "2026-01-02T03:04:05Z"
REFUSAL = 'parsing time "2026-01-02T03:04:05Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"'


@pytest.fixture
async def api(sandbox: SandboxHandle) -> AsyncIterator[ApiClient]:
    client = await config.new_client_from_config(config_file=str(sandbox.kubeconfig_path))
    try:
        yield client
    finally:
        await client.close()


def lease(name: str, renew: str) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": renew},
    }


async def test_create_and_update_are_a_400_naming_the_kind_as_the_decoder_does(api):
    path = kube.resource_path("leases", "default", group="coordination.k8s.io", version="v1")
    reply = await kube.request(api, "POST", path, body=lease("bad", SECONDS_ONLY))
    assert (reply.status, reply.body["reason"]) == (400, "BadRequest")
    assert reply.body["message"] == f'Lease in version "v1" cannot be handled as a Lease: {REFUSAL}'
    created = await kube.create(api, path, lease("good", "2026-01-02T03:04:05.000000+02:00"))
    assert created["spec"]["renewTime"] == "2026-01-02T01:04:05.000000Z"
    created["spec"]["renewTime"] = SECONDS_ONLY
    update = await kube.request(api, "PUT", f"{path}/good", body=created)
    assert (update.status, update.body["message"]) == (400, reply.body["message"])


async def test_a_patch_that_leaves_a_bad_micro_time_is_a_422_on_the_patch(api):
    # handlers/patch.go: the patched object does not decode -> Invalid, field "patch", the decoder's words.
    path = kube.resource_path("leases", "default", group="coordination.k8s.io", version="v1")
    await kube.create(api, path, lease("patched", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
    reply = await kube.merge_patch(api, f"{path}/patched", {"spec": {"renewTime": SECONDS_ONLY}})
    assert (reply.status, reply.body["reason"]) == (422, "Invalid")
    (cause,) = reply.body["details"]["causes"]
    assert cause["field"] == "patch"
    assert cause["message"].endswith(REFUSAL)


async def test_a_core_event_time_is_a_micro_time(api):
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Widget", "name": "w", "namespace": "default"},
        "reason": "Tested",
        "message": "m",
        "type": "Normal",
        "eventTime": SECONDS_ONLY,
        "reportingComponent": "kubernaut.ai/test",
        "reportingInstance": "i",
        "action": "Test",
    }
    reply = await kube.request(api, "POST", kube.resource_path("events", "default", group="", version="v1"), body=body)
    assert reply.status == 400
    assert reply.body["message"] == f'Event in version "v1" cannot be handled as a Event: {REFUSAL}'
