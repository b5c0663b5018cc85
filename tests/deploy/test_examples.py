"""The example RemediationRequest is one the API server accepts and the orchestrator can route."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.validation import semantic_problems
from shared.models import RemediationRequest
from tests.deploy.manifests import MANIFESTS, ROOT

EXAMPLE = ROOT / "examples" / "remediationrequest.yaml"
# Keywords of our CRD schemas that do not constrain a value we check here (CEL rules need a CEL engine).
NOT_CHECKED = {
    "description",
    "format",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}
CHECKED = {"type", "properties", "required", "additionalProperties", "items", "enum", "pattern", "minLength"}
CHECKED |= {"maxLength", "maxItems", "maxProperties", "minimum", "x-kubernetes-preserve-unknown-fields"}
TYPES = {"string": str, "object": dict, "array": list, "boolean": bool, "integer": int, "number": (int, float)}


def schema_problems(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """What the structural schema rejects in `value`: the subset of OpenAPI v3 our CRDs use; unknown keywords fail."""
    unknown = set(schema) - NOT_CHECKED - CHECKED
    assert not unknown, f"{path}: schema keywords {unknown} are not checked by this test"
    if "type" in schema and not isinstance(value, TYPES[schema["type"]]):
        return [f"{path}: not a {schema['type']}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            problems.append(f"{path}: length {len(value)}")
    if isinstance(value, int | float) and value < schema.get("minimum", value):
        problems.append(f"{path}: below {schema['minimum']}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            problems.append(f"{path}: more than {schema['maxItems']} items")
        for index, item in enumerate(value):
            problems += schema_problems(item, schema.get("items", {}), f"{path}[{index}]")
    if isinstance(value, dict):
        problems += [f"{path}.{name}: required" for name in schema.get("required", []) if name not in value]
        if len(value) > schema.get("maxProperties", len(value)):
            problems.append(f"{path}: more than {schema['maxProperties']} properties")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                problems += schema_problems(item, properties[name], f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += schema_problems(item, schema["additionalProperties"], f"{path}.{name}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and path not in ("", ".metadata"):
                problems.append(f"{path}.{name}: unknown field (the API server would prune it)")
    return problems


def crd_schema(path: Path, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return served["schema"]["openAPIV3Schema"]


@pytest.fixture
def example() -> dict[str, Any]:
    (request,) = yaml.safe_load_all(EXAMPLE.read_text())
    return request


def test_the_example_request_passes_the_crd_schema(example):
    assert example["apiVersion"] == "kubernaut.ai/v1alpha1"
    schema = crd_schema(MANIFESTS / "crds" / "remediationrequests.kubernaut.ai.yaml", "v1alpha1")
    assert schema_problems(example, schema) == []


def test_the_example_request_parses_and_is_routable(example):
    assert semantic_problems(RemediationRequest.from_k8s(example)) == []


def test_the_schema_check_rejects_a_bad_fingerprint(example):
    example["spec"]["signalFingerprint"] = "ABC"
    schema = crd_schema(MANIFESTS / "crds" / "remediationrequests.kubernaut.ai.yaml", "v1alpha1")
    assert schema_problems(example, schema) == [".spec.signalFingerprint: 'ABC' does not match ^[a-f0-9]{64}$"]
