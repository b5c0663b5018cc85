"""Discovery documents (`/api`, `/apis`, group and group-version resource lists, `/version`) from the catalog.

The shapes are the legacy (unaggregated) discovery documents the real server serves; clients that ask for
aggregated discovery fall back to them, as they do with servers that predate it.
"""

from __future__ import annotations

from typing import Any, Final

from sandbox.resources import SUBRESOURCE_VERBS, Catalog, ResourceType

KUBERNETES_VERSION: Final = {"major": "1", "minor": "34", "gitVersion": "v1.34.0-sandbox"}


def version_info() -> dict[str, Any]:
    return {
        **KUBERNETES_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-08-27T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(catalog: Catalog, group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{version}", "version": version} for version in catalog.group_versions(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_list(catalog: Catalog) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(catalog, g) for g in catalog.groups()]}


def group(catalog: Catalog, name: str) -> dict[str, Any] | None:
    if name not in catalog.groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(catalog, name)}


def _entries(resource: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        main["shortNames"] = list(resource.short_names)
    if resource.categories:
        main["categories"] = list(resource.categories)
    subresources = [
        {
            "name": f"{resource.plural}/{subresource}",
            "singularName": "",
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": list(SUBRESOURCE_VERBS.get(subresource, ("get",))),
        }
        for subresource in resource.subresources
    ]
    return [main, *subresources]


def resource_list(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    resources = catalog.in_version(group, version)
    if not resources:
        return None
    document: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        document["apiVersion"] = "v1"
    document["groupVersion"] = f"{group}/{version}" if group else version
    document["resources"] = [entry for resource in resources for entry in _entries(resource)]
    return document
