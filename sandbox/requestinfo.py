"""What a request is about, derived from its method, path and query as the API server's RequestInfoFactory does.

The verb is the RBAC verb (get, list, watch, create, update, patch, delete, deletecollection), so the audit log
can be compared with a ClusterRole. Non-resource requests (`/api`, `/version`, ...) keep the lower-case method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sandbox.selectors import FieldSelector, SelectorError

_METHOD_VERBS: Final = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES: Final = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    is_resource_request: bool
    path: str
    verb: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()

    @property
    def is_watch(self) -> bool:
        return self.verb == "watch"


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t", "yes", "y")


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Classify a request; paths outside /api and /apis are non-resource requests."""
    segments = [segment for segment in path.strip("/").split("/") if segment != ""]
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    if not segments or segments[0] not in ("api", "apis"):
        return RequestInfo(False, path, method.lower())
    prefix = segments[0]
    rest = segments[1:]
    if prefix == "api":
        if len(rest) < 1:
            return RequestInfo(False, path, method.lower())
        group, version, rest = "", rest[0], rest[1:]
    else:
        if len(rest) < 2:
            return RequestInfo(False, path, method.lower())
        group, version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return RequestInfo(False, path, method.lower())
    if rest[0] == "watch" and verb == "get":
        verb = "watch"
        rest = rest[1:]
        if not rest:
            return RequestInfo(False, path, method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if _truthy(query.get("watch")) else "list"
        try:
            selector = FieldSelector.parse(query.get("fieldSelector", ""))
        except SelectorError:
            selector = FieldSelector()
        pinned = selector.exact("metadata.name")
        if pinned and "/" not in pinned and pinned not in (".", ".."):
            name = pinned
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(True, path, verb, group, version, namespace, resource, subresource, name, tuple(rest))
