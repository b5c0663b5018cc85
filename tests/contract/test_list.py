"""Lists: kind XList and resourceVersion, label and field selectors, selectable fields, limit and continue.

https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
"""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio import config

from tests import factories
from tests.contract import kube


@pytest.fixture(scope="module")
def colours(kubeconfig_path, namespace) -> str:
    """Four widgets in this module's namespace: a(red, tier=web) b(green, tier=db) c(blue, tier=web) d(red)."""

    async def create() -> None:
        api = await config.new_client_from_config(config_file=str(kubeconfig_path))
        try:
            for name, colour, labels in (
                ("a", "red", {"tier": "web"}),
                ("b", "green", {"tier": "db"}),
                ("c", "blue", {"tier": "web"}),
                ("d", "red", {}),
            ):
                body = kube.widget(name, namespace, color=colour)
                body["metadata"]["labels"] = {"set": "colours", **labels}
                await kube.create(api, kube.widget_path(namespace), body)
        finally:
            await api.close()

    asyncio.run(create())
    return namespace


def names(reply: kube.Reply) -> list[str]:
    return [item["metadata"]["name"] for item in reply.body["items"]]


async def test_a_list_has_the_list_kind_the_api_version_and_a_resource_version(api, colours):
    reply = await kube.get(api, kube.widget_path(colours))
    assert reply.status == 200
    assert reply.body["kind"] == "WidgetList"
    assert reply.body["apiVersion"] == "contract.kubernaut.ai/v1"
    assert int(reply.body["metadata"]["resourceVersion"]) > 0
    assert names(reply) == ["a", "b", "c", "d"]


async def test_custom_resource_list_items_carry_api_version_and_kind(api, colours):
    reply = await kube.get(api, kube.widget_path(colours))
    assert {(item["apiVersion"], item["kind"]) for item in reply.body["items"]} == {
        ("contract.kubernaut.ai/v1", "Widget")
    }


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "c"]),
        ("tier==web", ["a", "c"]),
        ("tier!=web", ["b", "d"]),  # != also matches objects without the label
        ("tier in (web,db)", ["a", "b", "c"]),
        ("tier notin (web)", ["b", "d"]),
        ("tier", ["a", "b", "c"]),
        ("!tier", ["d"]),
        ("set=colours,tier=web", ["a", "c"]),
        ("tier=nothing", []),
    ],
)
async def test_label_selectors_select_by_equality_sets_and_existence(api, colours, selector, expected):
    reply = await kube.request(api, "GET", kube.widget_path(colours), query={"labelSelector": selector})
    assert reply.status == 200
    assert names(reply) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=b", ["b"]),
        ("metadata.name!=b", ["a", "c", "d"]),
        ("spec.color=red", ["a", "d"]),
        ("spec.color!=red,metadata.name!=c", ["b"]),
    ],
)
async def test_field_selectors_select_by_name_and_selectable_fields(api, colours, selector, expected):
    reply = await kube.request(api, "GET", kube.widget_path(colours), query={"fieldSelector": selector})
    assert reply.status == 200
    assert names(reply) == expected


async def test_a_field_selector_on_metadata_namespace_works_across_namespaces(api, colours):
    reply = await kube.request(
        api, "GET", kube.widget_path(None), query={"fieldSelector": f"metadata.namespace={colours}"}
    )
    assert names(reply) == ["a", "b", "c", "d"]


async def test_a_field_that_is_not_selectable_is_400_field_label_not_supported(api, colours):
    reply = await kube.request(api, "GET", kube.widget_path(colours), query={"fieldSelector": "spec.size=1"})
    assert reply.status == 400
    assert reply.body["reason"] == "BadRequest"
    assert reply.body["message"] == "field label not supported: spec.size"


async def test_remediation_requests_select_by_signal_fingerprint(api, namespace, unique):
    body = factories.remediation_request(unique, namespace, fingerprint_seed=unique)
    await kube.create(api, kube.rr_path(namespace), body)
    fingerprint = body["spec"]["signalFingerprint"]
    reply = await kube.request(
        api, "GET", kube.rr_path(namespace), query={"fieldSelector": f"spec.signalFingerprint={fingerprint}"}
    )
    assert names(reply) == [unique]


async def test_a_malformed_label_selector_is_400(api, colours):
    reply = await kube.request(api, "GET", kube.widget_path(colours), query={"labelSelector": "tier in web"})
    assert reply.status == 400


async def test_limit_cuts_the_list_and_continue_fetches_the_rest(api, colours):
    first = await kube.request(api, "GET", kube.widget_path(colours), query={"limit": "3"})
    assert names(first) == ["a", "b", "c"]
    assert first.body["metadata"]["remainingItemCount"] == 1
    token = first.body["metadata"]["continue"]
    second = await kube.request(api, "GET", kube.widget_path(colours), query={"limit": "3", "continue": token})
    assert names(second) == ["d"]
    assert "continue" not in second.body["metadata"] or not second.body["metadata"]["continue"]


async def test_continued_pages_are_a_consistent_snapshot_of_the_first_page(api, colours, unique):
    first = await kube.request(api, "GET", kube.widget_path(colours), query={"limit": "2"})
    await kube.create(api, kube.widget_path(colours), kube.widget(f"z-{unique}", colours))
    rest = await kube.request(
        api, "GET", kube.widget_path(colours), query={"limit": "10", "continue": first.body["metadata"]["continue"]}
    )
    assert names(rest) == ["c", "d"]
    assert rest.body["metadata"]["resourceVersion"] == first.body["metadata"]["resourceVersion"]
    await kube.request(api, "DELETE", kube.widget_path(colours, f"z-{unique}"))


async def test_a_resource_version_with_continue_is_400(api, colours):
    first = await kube.request(api, "GET", kube.widget_path(colours), query={"limit": "1"})
    reply = await kube.request(
        api,
        "GET",
        kube.widget_path(colours),
        query={"limit": "1", "continue": first.body["metadata"]["continue"], "resourceVersion": "1"},
    )
    assert reply.status == 400


async def test_resource_version_match_without_resource_version_is_invalid(api, colours):
    reply = await kube.request(api, "GET", kube.widget_path(colours), query={"resourceVersionMatch": "NotOlderThan"})
    assert reply.status in (400, 422)


async def test_list_at_resource_version_0_and_unset_both_return_the_objects(api, colours):
    unset = await kube.get(api, kube.widget_path(colours))
    any_version = await kube.request(api, "GET", kube.widget_path(colours), query={"resourceVersion": "0"})
    assert names(any_version) == names(unset) == ["a", "b", "c", "d"]


async def test_list_not_older_than_a_seen_resource_version_includes_that_write(api, colours, unique):
    created = await kube.create(api, kube.widget_path(colours), kube.widget(f"n-{unique}", colours))
    reply = await kube.request(
        api,
        "GET",
        kube.widget_path(colours),
        query={"resourceVersion": created["metadata"]["resourceVersion"], "resourceVersionMatch": "NotOlderThan"},
    )
    assert f"n-{unique}" in names(reply)
    await kube.request(api, "DELETE", kube.widget_path(colours, f"n-{unique}"))


async def test_a_list_across_namespaces_includes_other_namespaces(api, colours):
    reply = await kube.request(api, "GET", kube.widget_path(None), query={"labelSelector": "set=colours"})
    assert {(item["metadata"]["namespace"], item["metadata"]["name"]) for item in reply.body["items"]} >= {
        (colours, "a"),
        (colours, "d"),
    }


async def test_built_in_list_items_have_no_api_version_or_kind(api, colours):
    reply = await kube.get(api, "/api/v1/namespaces")
    assert reply.body["kind"] == "NamespaceList"
    assert all("kind" not in item for item in reply.body["items"])
