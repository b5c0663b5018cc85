"""Every field of every built-in object is one the Kubernetes API knows: kustomize does not check, the API server
would reject the object (or, worse, drop a misspelt optional field such as `readinessProbes` without a word)."""

from typing import Any

import kubernetes_asyncio.client.models as api_models

from tests.deploy.manifests import of_kind


def unknown_fields(value: Any, type_name: str, path: str) -> list[str]:
    """Fields of `value` that the API's `type_name` (as kubernetes_asyncio's models name types) does not have."""
    if type_name.startswith("list["):
        return [p for i, item in enumerate(value) for p in unknown_fields(item, type_name[5:-1], f"{path}[{i}]")]
    if type_name.startswith("dict("):
        item_type = type_name[5:-1].split(", ", 1)[1]
        return [p for key, item in value.items() for p in unknown_fields(item, item_type, f"{path}.{key}")]
    model = getattr(api_models, type_name, None)
    if model is None:  # str, int, bool, object (int-or-string, quantities): nothing below to check
        return []
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name}"]
    by_wire_name = {wire: attribute for attribute, wire in model.attribute_map.items()}
    problems = []
    for key, item in value.items():
        if key not in by_wire_name:
            problems.append(f"{path}.{key}: not a field of {type_name}")
        else:
            problems += unknown_fields(item, model.openapi_types[by_wire_name[key]], f"{path}.{key}")
    return problems


def test_every_built_in_object_uses_only_fields_the_api_knows(objects):
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith(("monitoring.coreos.com/", "kubernaut.ai/")):
            continue  # custom resources: their own schemas
        version = obj["apiVersion"].rpartition("/")[2]
        model = f"{version.capitalize()}{obj['kind']}"
        assert hasattr(api_models, model), f"no model {model} for {obj['apiVersion']} {obj['kind']}"
        assert unknown_fields(obj, model, obj["metadata"]["name"]) == []
        checked += 1
    assert checked >= len(of_kind(objects, "Deployment")) + len(of_kind(objects, "CustomResourceDefinition"))


def test_a_misspelt_field_is_found():
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    deployment["spec"] = {"template": {"spec": {"containers": [{"name": "c", "readinessProbes": {}}]}}}
    assert unknown_fields(deployment, "V1Deployment", "d") == [
        "d.spec.template.spec.containers[0].readinessProbes: not a field of V1Container"
    ]
