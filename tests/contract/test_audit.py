"""The audit log: every request with its user, RBAC verb, resource and response code (sandbox only)."""

from __future__ import annotations

import urllib.request

import pytest
from kubernetes_asyncio import config

from tests.contract import kube
from tests.contract.kube import WatchStream

pytestmark = [pytest.mark.sandbox_only, pytest.mark.usefixtures("crds")]

ORCHESTRATOR = "system:serviceaccount:kubernaut-system:kubernaut-orchestrator"


@pytest.fixture
async def orchestrator(sandbox):
    client = await config.new_client_from_config(config_file=str(sandbox.kubeconfig_for(ORCHESTRATOR)))
    yield client
    await client.close()


def summary(records) -> list[tuple[str, str, str, str, str, str, int]]:
    return [(r.verb, r.api_group, r.resource, r.subresource, r.namespace, r.name, r.code) for r in records]


async def test_each_request_is_recorded_with_its_user_verb_and_resource(sandbox, orchestrator, namespace, unique):
    since = sandbox.admin.state()["auditLastSequence"]
    path = kube.widget_path(namespace)
    await kube.create(orchestrator, path, kube.widget(unique, namespace))
    created = (await kube.get(orchestrator, f"{path}/{unique}")).body
    await kube.get(orchestrator, path)
    await kube.request(orchestrator, "PUT", f"{path}/{unique}", body=created)
    await kube.merge_patch(orchestrator, f"{path}/{unique}/status", {"status": {"phase": "Ready"}})
    await kube.request(orchestrator, "DELETE", f"{path}/{unique}")
    await kube.request(orchestrator, "DELETE", path, query={"labelSelector": "nothing=here"})
    await kube.get(orchestrator, f"{path}/{unique}")
    records = sandbox.admin.audit(since=since, user=ORCHESTRATOR)
    group = "contract.kubernaut.ai"
    assert summary(records) == [
        ("create", group, "widgets", "", namespace, "", 201),
        ("get", group, "widgets", "", namespace, unique, 200),
        ("list", group, "widgets", "", namespace, "", 200),
        ("update", group, "widgets", "", namespace, unique, 200),
        ("patch", group, "widgets", "status", namespace, unique, 200),
        ("delete", group, "widgets", "", namespace, unique, 200),
        ("deletecollection", group, "widgets", "", namespace, "", 200),
        ("get", group, "widgets", "", namespace, unique, 404),
    ]
    assert all(record.api_version == "v1" and record.user == ORCHESTRATOR for record in records)


async def test_a_watch_is_recorded_when_it_starts(sandbox, orchestrator, namespace):
    since = sandbox.admin.state()["auditLastSequence"]
    async with WatchStream(orchestrator, kube.widget_path(namespace), {"timeoutSeconds": "30"}):
        sandbox.admin.wait_for_watches("widgets", user=ORCHESTRATOR)
        records = sandbox.admin.audit(since=since, user=ORCHESTRATOR)
    assert summary(records) == [("watch", "contract.kubernaut.ai", "widgets", "", namespace, "", 200)]


async def test_a_watch_of_one_name_records_the_name(sandbox, orchestrator, namespace):
    since = sandbox.admin.state()["auditLastSequence"]
    query = {"fieldSelector": "metadata.name=one", "timeoutSeconds": "1"}
    async with WatchStream(orchestrator, kube.widget_path(namespace), query) as stream:
        await stream.rest()
    assert summary(sandbox.admin.audit(since=since, user=ORCHESTRATOR))[0][:6] == (
        "watch",
        "contract.kubernaut.ai",
        "widgets",
        "",
        namespace,
        "one",
    )


async def test_refused_and_failed_requests_are_recorded_with_their_code(sandbox, orchestrator, namespace):
    since = sandbox.admin.state()["auditLastSequence"]
    sandbox.admin.fail_requests(code=500, verb="list", resource="widgets", user=ORCHESTRATOR)
    await kube.get(orchestrator, kube.widget_path(namespace))
    await kube.request(orchestrator, "POST", kube.widget_path(namespace), body={"metadata": {}})
    codes = [(r.verb, r.code) for r in sandbox.admin.audit(since=since, user=ORCHESTRATOR)]
    assert codes == [("list", 500), ("create", 422)]


async def test_namespaces_and_discovery_are_recorded_like_the_real_request_info(sandbox, orchestrator, unique):
    since = sandbox.admin.state()["auditLastSequence"]
    await kube.get(orchestrator, f"/api/v1/namespaces/{unique}")
    await kube.get(orchestrator, "/apis")
    records = sandbox.admin.audit(since=since, user=ORCHESTRATOR)
    assert summary(records[:1]) == [("get", "", "namespaces", "", unique, unique, 404)]
    assert (records[1].verb, records[1].resource, records[1].path) == ("get", "", "/apis")


async def test_requests_without_a_token_are_anonymous(sandbox):
    since = sandbox.admin.state()["auditLastSequence"]
    with urllib.request.urlopen(f"{sandbox.url}/version") as response:
        assert response.status == 200
    assert [r.user for r in sandbox.admin.audit(since=since)] == ["system:anonymous"]


async def test_the_audit_log_can_be_cleared(sandbox):
    sandbox.admin.clear_audit()
    assert sandbox.admin.audit() == []
