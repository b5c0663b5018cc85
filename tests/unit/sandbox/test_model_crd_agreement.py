"""Differential test: the pydantic models accept an object exactly when the API server would.

Objects are generated from the CRDs' own schemas (manifests/crds), then mutated the ways real objects go wrong
(missing or null required fields, too long, too short, wrong pattern, wrong enum, wrong type, out of range, bad
timestamps, too many entries, unknown fields). The oracle on one side is `Model.from_k8s`; on the other, the
sandbox's validator (pruning and validating as apiextensions-apiserver does), for spec and status.

Where the two disagree, the disagreement is listed in KNOWN_DISAGREEMENTS with a strict xfail example, so it
stays visible and a fix on either side is noticed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.models import ModelError
from tests.crdschema import KINDS, RAW, VALIDATORS, Path_, valid_value


def valid_object(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    properties = RAW[kind]["properties"]
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just(KINDS[kind].RESOURCE.api_version),
            "kind": st.just(kind),
            "metadata": st.just({"name": "x", "namespace": "default"}),
            "spec": valid_value(properties["spec"]),
        },
        optional={"status": valid_value(properties["status"])},
    )


def walk(value: Any, node: dict[str, Any], path: Path_ = ()) -> list[tuple[Path_, dict[str, Any], Any]]:
    """Every (path, schema node, value) in an object, for picking where to break it."""
    found: list[tuple[Path_, dict[str, Any], Any]] = [(path, node, value)]
    if isinstance(value, dict) and "properties" in node:
        for key, item in value.items():
            if key in node["properties"]:
                found.extend(walk(item, node["properties"][key], (*path, key)))
    elif isinstance(value, dict) and "additionalProperties" in node:
        for key, item in value.items():
            found.extend(walk(item, node["additionalProperties"], (*path, key)))
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            found.extend(walk(item, node["items"], (*path, index)))
    return found


def put(obj: dict[str, Any], path: Path_, value: Any) -> None:
    node: Any = obj
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()
Mutation = Callable[[Path_, dict[str, Any], Any], Any]
# name -> (does the node qualify, the broken value)
MUTATIONS: dict[str, tuple[Callable[[dict[str, Any], Any], bool], Mutation]] = {
    "too long": (lambda n, v: "maxLength" in n, lambda p, n, v: "a" * (n["maxLength"] + 1)),
    "too short": (lambda n, v: n.get("minLength", 0) > 0, lambda p, n, v: ""),
    "pattern mismatch": (lambda n, v: "pattern" in n, lambda p, n, v: "!" + str(v)),
    "trailing newline": (lambda n, v: "pattern" in n, lambda p, n, v: str(v) + "\n"),
    "unknown enum value": (lambda n, v: "enum" in n, lambda p, n, v: "NotOneOfThem"),
    "number for a string": (lambda n, v: n.get("type") == "string" and "format" not in n, lambda p, n, v: 42),
    "string for an object": (lambda n, v: n.get("type") == "object", lambda p, n, v: "text"),
    "below the minimum": (lambda n, v: "minimum" in n, lambda p, n, v: n["minimum"] - 1),
    "not a timestamp": (lambda n, v: n.get("format") == "date-time", lambda p, n, v: "yesterday"),
    "too many properties": (
        lambda n, v: "maxProperties" in n,
        lambda p, n, v: {f"K{i}": "v" for i in range(n["maxProperties"] + 1)},
    ),
    "integral float for an integer": (lambda n, v: n.get("type") == "integer", lambda p, n, v: float(v)),
    "null optional field": (lambda n, v: True, lambda p, n, v: None),  # only where the parent names the field
    "null map value": (lambda n, v: True, lambda p, n, v: None),  # only in a map (additionalProperties)
    "unknown field": (
        lambda n, v: n.get("type") == "object" and "properties" in n,
        lambda p, n, v: {**v, "zzUnknown": 1},
    ),
    # pydantic's lax mode would accept these; the models take JSON types and timestamps as the CRD does.
    "digits for an integer": (lambda n, v: n.get("type") == "integer", lambda p, n, v: str(v)),
    "boolean for an integer": (lambda n, v: n.get("type") == "integer", lambda p, n, v: True),
    "string for a boolean": (lambda n, v: n.get("type") == "boolean", lambda p, n, v: "true"),
    "number for a boolean": (lambda n, v: n.get("type") == "boolean", lambda p, n, v: 1),
    "timestamp without a zone": (lambda n, v: n.get("format") == "date-time", lambda p, n, v: str(v).rstrip("Z")),
    "date for a timestamp": (lambda n, v: n.get("format") == "date-time", lambda p, n, v: str(v)[:10]),
    "epoch seconds for a timestamp": (lambda n, v: n.get("format") == "date-time", lambda p, n, v: 1700000000),
    "duplicate list-map key": (
        lambda n, v: n.get("x-kubernetes-list-type") == "map" and bool(v),
        lambda p, n, v: [*v, copy.deepcopy(v[0])],
    ),
}
KNOWN_DISAGREEMENTS = {
    "null map value": "the API server prunes a null map value; the model refuses it",
}
# Mutations that break an object only where the parent says a field is required.
REQUIRED_MUTATIONS = ("missing required field", "null required field")


def mutated(data: st.DataObject, kind: str) -> tuple[str, dict[str, Any]]:
    obj = data.draw(valid_object(kind), label="valid object")
    root = RAW[kind]
    places = [(p, n, v) for p, n, v in walk(obj, root) if p and p[0] in ("spec", "status")]
    agreeing = [name for name in MUTATIONS if name not in KNOWN_DISAGREEMENTS]
    name = data.draw(st.sampled_from(["none", *agreeing, *REQUIRED_MUTATIONS]), label="mutation")
    broken = copy.deepcopy(obj)
    if name in REQUIRED_MUTATIONS:
        parents = [
            (p, n, v)
            for p, n, v in [*places, (("spec",), root["properties"]["spec"], obj["spec"])]
            if n.get("required") and isinstance(v, dict)
        ]
        path, node, value = data.draw(st.sampled_from(parents), label="parent")
        key = data.draw(st.sampled_from(node["required"]), label="required key")
        put(broken, (*path, key), _DELETE if name == "missing required field" else None)
    elif name != "none":
        applies, breaks = MUTATIONS[name]
        candidates = [(p, n, v) for p, n, v in places if applies(n, v)]
        nodes = {p: n for p, n, v in walk(obj, root)}
        candidates = [(p, n, v) for p, n, v in candidates if _null_allowed_here(name, nodes.get(p[:-1], {}), p[-1])]
        if not candidates:
            return "none", broken
        path, node, value = data.draw(st.sampled_from(candidates), label="place")
        put(broken, path, breaks(path, node, value))
    return name, broken


def _null_allowed_here(mutation: str, parent: dict[str, Any], key: str | int) -> bool:
    """The two null mutations apply to optional named fields, and to map values, respectively."""
    if mutation == "null optional field":
        return key in parent.get("properties", {}) and key not in parent.get("required", [])
    if mutation == "null map value":
        return "additionalProperties" in parent
    return True


def model_accepts(kind: str, obj: dict[str, Any]) -> bool:
    try:
        KINDS[kind].from_k8s(copy.deepcopy(obj))
    except ModelError:
        return False
    return True


def server_accepts(kind: str, obj: dict[str, Any]) -> bool:
    return not VALIDATORS[kind].admit(obj)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_the_model_accepts_an_object_exactly_when_the_api_server_does(kind, data):
    mutation, obj = mutated(data, kind)
    model, server = model_accepts(kind, obj), server_accepts(kind, obj)
    errors = [str(error) for error in VALIDATORS[kind].admit(obj)]
    assert model == server, f"{kind}, mutation {mutation!r}: model accepts={model}, server accepts={server}: {errors}"


def full_object(kind: str) -> dict[str, Any]:
    """A valid object with every field set, to break one field at a time."""
    fingerprint = "0123456789abcdef" * 4
    reference = {"kind": "K", "name": "n", "namespace": "ns", "uid": "u"}
    condition = {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-01-02T03:04:05Z",
        "reason": "R",
        "message": "m",
    }
    workflow = {"workflowId": "w", "version": "1", "executionBundle": "b", "serviceAccountName": "sa"}
    if kind == "RemediationRequest":
        spec = {
            "signalFingerprint": fingerprint,
            "signalName": "s",
            "severity": "high",
            "signalType": "alert",
            "signalSource": "src",
            "targetResource": {"kind": "Deployment", "name": "web", "namespace": "ns"},
            "workflowRef": workflow,
            "parameters": {"A": "b"},
            "timeouts": {"executing": "30m"},
        }
        status = {
            "phase": "Blocked",
            "reason": "ResourceBusy",
            "observedGeneration": 1,
            "startTime": "2026-01-02T03:04:05Z",
            "blockReason": "ResourceBusy",
            "requiresManualReview": False,
            "consecutiveFailureCount": 1,
            "workflowExecutionRef": reference,
            "notificationRequestRefs": [reference],
            "conditions": [condition],
        }
    else:
        spec = {
            "remediationRequestRef": reference,
            "workflowRef": workflow,
            "targetResource": "ns/deployment/web",
            "parameters": {"A": "b"},
            "executionConfig": {"timeout": "10m", "serviceAccountName": "sa"},
        }
        status = {
            "phase": "Failed",
            "observedGeneration": 1,
            "startTime": "2026-01-02T03:04:05Z",
            "duration": "1m",
            "pipelineRunStatus": {"completedTasks": 1, "totalTasks": 2},
            "failureDetails": {"reason": "TaskFailed", "wasExecutionFailure": True, "exitCode": 1},
            "conditions": [condition],
        }
    return {
        "apiVersion": KINDS[kind].RESOURCE.api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "default"},
        "spec": spec,
        "status": status,
    }


def break_once(kind: str, mutation: str) -> dict[str, Any]:
    obj = full_object(kind)
    applies, breaks = MUTATIONS[mutation]
    places = walk(obj, RAW[kind])
    nodes = {p: n for p, n, v in places}
    path, node, value = next(
        (p, n, v)
        for p, n, v in places
        if p and p[0] in ("spec", "status") and applies(n, v) and _null_allowed_here(mutation, nodes[p[:-1]], p[-1])
    )
    put(obj, path, breaks(path, node, value))
    return obj


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_full_object_is_accepted_by_both(kind):
    obj = full_object(kind)
    assert model_accepts(kind, obj)
    assert server_accepts(kind, obj)


@pytest.mark.parametrize(
    "mutation",
    [
        name
        for name in MUTATIONS
        if name not in KNOWN_DISAGREEMENTS
        and name not in ("null optional field", "unknown field", "integral float for an integer")
    ],
)
def test_each_breaking_mutation_is_refused_by_both(mutation):
    kind = "WorkflowExecution" if mutation == "too many properties" else "RemediationRequest"
    obj = break_once(kind, mutation)
    assert not server_accepts(kind, obj)
    assert not model_accepts(kind, obj)


@pytest.mark.parametrize(
    "mutation",
    [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=why)) for name, why in KNOWN_DISAGREEMENTS.items()],
)
def test_known_disagreements_between_model_and_crd(mutation):
    obj = break_once("RemediationRequest", mutation)
    assert model_accepts("RemediationRequest", obj) == server_accepts("RemediationRequest", obj), KNOWN_DISAGREEMENTS[
        mutation
    ]
