"""The committed CRDs are exactly what the models generate, and model and schema agree field by field."""

from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from shared.models.crd import CRDS, render_all

CRD_DIR = Path(__file__).resolve().parents[2] / "manifests" / "crds"


def committed(name: str) -> dict[str, Any]:
    return yaml.safe_load((CRD_DIR / name).read_text())


def test_committed_crds_equal_the_generated_ones():
    generated = render_all()
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(generated)
    for name, text in generated.items():
        assert (CRD_DIR / name).read_text() == text, f"{name} is stale: run `make crds`"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside Optional[...] / list[...] / Annotated[...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_is_list(a) for a in get_args(annotation))


def _assert_agree(model: type[BaseModel], schema: dict[str, Any], path: str) -> None:
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    properties = schema.get("properties", {})
    assert set(fields) == set(properties), f"{path}: model fields and schema properties differ"
    required = {alias for alias, info in fields.items() if info.is_required()}
    assert required == set(schema.get("required", [])), f"{path}: required fields differ"
    for alias, info in fields.items():
        nested = _model_of(info.annotation)
        if nested is None:
            continue
        sub = properties[alias]
        if _is_list(info.annotation):
            assert sub["type"] == "array", f"{path}.{alias} should be an array"
            sub = sub["items"]
        _assert_agree(nested, sub, f"{path}.{alias}")


@pytest.mark.parametrize("info", CRDS, ids=lambda info: info.model.RESOURCE.kind)
def test_model_and_schema_have_the_same_fields_both_ways(info):
    crd = committed(f"{info.model.RESOURCE.group_resource}.yaml")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in ("spec", "status"):
        nested = _model_of(info.model.model_fields[part].annotation)
        if nested is not None:
            _assert_agree(nested, schema["properties"][part], part)
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}


def _walk(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("info", CRDS, ids=lambda info: info.model.RESOURCE.kind)
def test_schema_is_structural(info):
    schema = committed(f"{info.model.RESOURCE.group_resource}.yaml")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node, f"{path or '<root>'} has no type"
        assert not {"$ref", "anyOf", "allOf", "oneOf", "title", "default"} & set(node), path
        if node["type"] == "object" and path != ".metadata":  # the server owns metadata's schema
            assert (
                "properties" in node
                or "additionalProperties" in node
                or node.get("x-kubernetes-preserve-unknown-fields")
            ), path


@pytest.mark.parametrize("info", CRDS, ids=lambda info: info.model.RESOURCE.kind)
def test_crd_has_status_subresource_immutable_spec_and_valid_columns(info):
    version = committed(f"{info.model.RESOURCE.group_resource}.yaml")["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert version["subresources"] == {"status": {}}
    assert schema["properties"]["spec"]["x-kubernetes-validations"] == [
        {"rule": "self == oldSelf", "message": "spec is immutable after creation"}
    ]
    assert "spec" in schema["required"]
    for column in version["additionalPrinterColumns"]:
        parts = column["jsonPath"].lstrip(".").split(".")
        node = schema
        for part in parts:
            if part == "metadata":
                break
            node = node["properties"][part]
    for selectable in version.get("selectableFields", []):
        node = schema
        for part in selectable["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        assert node["type"] == "string"


def test_crds_carry_the_names_and_fields_of_the_spec():
    rr = committed("remediationrequests.kubernaut.ai.yaml")
    wfe = committed("workflowexecutions.kubernaut.ai.yaml")
    assert rr["spec"]["names"]["shortNames"] == ["rr"]
    assert wfe["spec"]["names"]["shortNames"] == ["wfe"]
    assert rr["spec"]["versions"][0]["selectableFields"] == [{"jsonPath": ".spec.signalFingerprint"}]
    assert wfe["spec"]["versions"][0]["selectableFields"] == [{"jsonPath": ".spec.targetResource"}]
    rr_schema = rr["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert rr_schema["properties"]["spec"]["properties"]["signalFingerprint"]["pattern"] == "^[a-f0-9]{64}$"
    assert [c["name"] for c in rr["spec"]["versions"][0]["additionalPrinterColumns"] if "priority" not in c] == [
        "Phase",
        "Reason",
        "Target",
        "Blocked-Until",
        "Age",
    ]
    assert [c["name"] for c in wfe["spec"]["versions"][0]["additionalPrinterColumns"]] == [
        "Phase",
        "Workflow",
        "Target",
        "Reason",
        "Duration",
        "Age",
    ]
    wfe_status = wfe["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert "consecutiveFailures" not in wfe_status and "nextAllowedExecution" not in wfe_status
