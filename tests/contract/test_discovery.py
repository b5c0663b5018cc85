"""Discovery: what a client learns from /api, /apis, the resource lists and /version.

https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api
"""

from __future__ import annotations

import pytest

from tests.contract import kube

pytestmark = pytest.mark.usefixtures("crds")


async def test_the_core_group_serves_version_v1(api):
    reply = await kube.get(api, "/api")
    assert reply.status == 200
    assert reply.body["kind"] == "APIVersions"
    assert "v1" in reply.body["versions"]


async def test_the_group_list_names_every_group_we_use_with_a_preferred_version(api):
    reply = await kube.get(api, "/apis")
    groups = {group["name"]: group for group in reply.body["groups"]}
    assert reply.body["kind"] == "APIGroupList"
    for name in ("events.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io", "kubernaut.ai", "tekton.dev"):
        assert name in groups
        assert groups[name]["preferredVersion"]["groupVersion"].startswith(f"{name}/")
    assert {"groupVersion": "kubernaut.ai/v1alpha1", "version": "v1alpha1"} in groups["kubernaut.ai"]["versions"]


async def test_a_group_document_lists_its_versions(api):
    reply = await kube.get(api, "/apis/kubernaut.ai")
    assert reply.status == 200
    assert reply.body["kind"] == "APIGroup"
    assert reply.body["name"] == "kubernaut.ai"
    assert reply.body["preferredVersion"] == {"groupVersion": "kubernaut.ai/v1alpha1", "version": "v1alpha1"}


async def test_core_v1_lists_namespaces_events_and_serviceaccounts_with_their_verbs(api):
    reply = await kube.get(api, "/api/v1")
    resources = {resource["name"]: resource for resource in reply.body["resources"]}
    assert reply.body["kind"] == "APIResourceList"
    assert reply.body["groupVersion"] == "v1"
    assert resources["namespaces"]["namespaced"] is False
    assert resources["namespaces"]["kind"] == "Namespace"
    assert "ns" in resources["namespaces"]["shortNames"]
    assert {"create", "get", "list", "watch", "patch", "update", "delete"} <= set(resources["namespaces"]["verbs"])
    assert "namespaces/status" in resources
    assert "namespaces/finalize" in resources
    assert resources["events"]["namespaced"] is True
    assert resources["serviceaccounts"]["kind"] == "ServiceAccount"


async def test_leases_and_events_are_served_in_their_groups(api):
    leases = {r["name"]: r for r in (await kube.get(api, "/apis/coordination.k8s.io/v1")).body["resources"]}
    events = {r["name"]: r for r in (await kube.get(api, "/apis/events.k8s.io/v1")).body["resources"]}
    assert leases["leases"]["kind"] == "Lease"
    assert leases["leases"]["namespaced"] is True
    assert events["events"]["kind"] == "Event"
    assert "deletecollection" in events["events"]["verbs"]


async def test_a_crd_is_discoverable_with_its_status_subresource_short_names_and_categories(api):
    reply = await kube.get(api, "/apis/kubernaut.ai/v1alpha1")
    resources = {resource["name"]: resource for resource in reply.body["resources"]}
    rr = resources["remediationrequests"]
    assert reply.body["groupVersion"] == "kubernaut.ai/v1alpha1"
    assert rr["kind"] == "RemediationRequest"
    assert rr["singularName"] == "remediationrequest"
    assert rr["namespaced"] is True
    assert rr["shortNames"] == ["rr"]
    assert rr["categories"] == ["kubernaut"]
    assert set(rr["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert set(resources["remediationrequests/status"]["verbs"]) == {"get", "patch", "update"}
    assert {"workflowexecutions", "notificationrequests"} <= set(resources)


async def test_version_reports_major_minor_and_git_version(api):
    reply = await kube.get(api, "/version")
    assert reply.status == 200
    assert reply.body["major"] == "1"
    assert reply.body["minor"].rstrip("+").isdigit()
    assert reply.body["gitVersion"].startswith("v1.")


async def test_an_unknown_group_version_is_404(api):
    reply = await kube.get(api, "/apis/nothing.example.com/v1/things")
    assert reply.status == 404
