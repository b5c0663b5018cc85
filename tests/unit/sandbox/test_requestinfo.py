"""Requests map to RBAC verbs, resources and names as the API server's RequestInfoFactory maps them."""

import pytest

from sandbox.requestinfo import parse_request_info


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/n/events/e", {}, ("get", "", "events", "", "n", "e")),
        ("GET", "/api/v1/namespaces/n/events", {}, ("list", "", "events", "", "n", "")),
        ("GET", "/api/v1/events", {"watch": "true"}, ("watch", "", "events", "", "", "")),
        ("GET", "/api/v1/watch/namespaces/n/events", {}, ("watch", "", "events", "", "n", "")),
        (
            "GET",
            "/apis/g/v/namespaces/n/rs",
            {"watch": "1", "fieldSelector": "metadata.name=x"},
            ("watch", "g", "rs", "", "n", "x"),
        ),
        ("POST", "/apis/g/v/namespaces/n/rs", {}, ("create", "g", "rs", "", "n", "")),
        ("PUT", "/apis/g/v/namespaces/n/rs/x", {}, ("update", "g", "rs", "", "n", "x")),
        ("PUT", "/apis/g/v/namespaces/n/rs/x/status", {}, ("update", "g", "rs", "status", "n", "x")),
        ("PATCH", "/apis/g/v/namespaces/n/rs/x/status", {}, ("patch", "g", "rs", "status", "n", "x")),
        ("DELETE", "/apis/g/v/namespaces/n/rs/x", {}, ("delete", "g", "rs", "", "n", "x")),
        ("DELETE", "/apis/g/v/namespaces/n/rs", {}, ("deletecollection", "g", "rs", "", "n", "")),
        ("GET", "/api/v1/namespaces/n", {}, ("get", "", "namespaces", "", "n", "n")),
        ("PUT", "/api/v1/namespaces/n/finalize", {}, ("update", "", "namespaces", "finalize", "n", "n")),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "", "")),
        ("GET", "/apis/g/v/rs", {}, ("list", "g", "rs", "", "", "")),
    ],
)
def test_a_resource_request_gets_its_rbac_verb_and_target(method, path, query, expected):
    info = parse_request_info(method, path, query)
    assert info.is_resource_request
    assert (info.verb, info.api_group, info.resource, info.subresource, info.namespace, info.name) == expected


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/g", "/apis/g/v", "/version", "/healthz"])
def test_discovery_and_health_are_non_resource_requests(path):
    info = parse_request_info("GET", path, {})
    assert not info.is_resource_request
    assert info.verb == "get"
