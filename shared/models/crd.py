"""CustomResourceDefinitions generated from the models, so the two cannot drift.

The models are the source of truth. `python -m shared.models.crd [DIR]` writes `manifests/crds/*.yaml`; a test
regenerates them and fails if the committed files differ. The transformation turns pydantic's JSON schema into a
Kubernetes structural schema: references inlined, optional fields unwrapped, titles and defaults dropped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.models._base import KubeObject
from shared.models.notificationrequest import NotificationRequest
from shared.models.remediationrequest import RemediationRequest
from shared.models.workflowexecution import WorkflowExecution

IMMUTABLE_SPEC_RULE = {"rule": "self == oldSelf", "message": "spec is immutable after creation"}
_DROPPED_KEYS = {"title", "default"}


@dataclass(frozen=True)
class CrdInfo:
    model: type[KubeObject]
    short_names: list[str]
    printer_columns: list[dict[str, Any]]
    selectable_fields: list[str] = field(default_factory=list)


def _column(name: str, json_path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    return column


# Blocked-Until is a string column: kubectl prints "<invalid>" for a date column in the future.
CRDS = [
    CrdInfo(
        RemediationRequest,
        short_names=["rr"],
        printer_columns=[
            _column("Phase", ".status.phase"),
            _column("Reason", ".status.reason"),
            _column("Target", ".spec.targetResource.name"),
            _column("Blocked-Until", ".status.blockedUntil"),
            _column("Age", ".metadata.creationTimestamp", "date"),
            _column("Target-Kind", ".spec.targetResource.kind", priority=1),
            _column("Target-Namespace", ".spec.targetResource.namespace", priority=1),
            _column("Outcome", ".status.outcome", priority=1),
        ],
        selectable_fields=[".spec.signalFingerprint"],
    ),
    CrdInfo(
        WorkflowExecution,
        short_names=["wfe"],
        printer_columns=[
            _column("Phase", ".status.phase"),
            _column("Workflow", ".spec.workflowRef.workflowId"),
            _column("Target", ".spec.targetResource"),
            _column("Reason", ".status.failureDetails.reason"),
            _column("Duration", ".status.duration"),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
        selectable_fields=[".spec.targetResource"],
    ),
    CrdInfo(
        NotificationRequest,
        short_names=["nr"],
        printer_columns=[
            _column("Type", ".spec.type"),
            _column("Priority", ".spec.priority"),
            _column("Subject", ".spec.subject", priority=1),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
    ),
]


def structural_schema(model: type[KubeObject]) -> dict[str, Any]:
    """The openAPIV3Schema of a kind: the model's JSON schema in Kubernetes' structural form."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    schema = _structural(raw, definitions)
    properties = schema["properties"]
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    properties["spec"]["x-kubernetes-validations"] = [IMMUTABLE_SPEC_RULE]
    schema["required"] = [name for name in schema.get("required", []) if name not in ("apiVersion", "kind")]
    if not schema["required"]:
        del schema["required"]
    return schema


def _structural(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v != {"type": "null"}]
        if len(variants) != 1:
            raise ValueError(f"cannot express a union as a structural schema: {variants}")
        node = {**variants[0], **node}
        return _structural(node, definitions)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, definitions) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, definitions)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _structural(value, definitions)
            # `True` means "extra fields allowed" in the model; the API server prunes them instead.
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out.setdefault("x-kubernetes-preserve-unknown-fields", True)
    return out


def custom_resource_definition(info: CrdInfo) -> dict[str, Any]:
    resource = info.model.RESOURCE
    version: dict[str, Any] = {
        "name": resource.version,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": info.printer_columns,
        "schema": {"openAPIV3Schema": structural_schema(info.model)},
    }
    if info.selectable_fields:
        version["selectableFields"] = [{"jsonPath": path} for path in info.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.group_resource},
        "spec": {
            "group": resource.group,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": info.short_names,
                "categories": ["kubernaut"],
            },
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "versions": [version],
        },
    }


HEADER = "# Generated from shared/models by `python -m shared.models.crd`. Do not edit by hand.\n"


def render_all() -> dict[str, str]:
    """File name -> YAML text for every CRD."""
    return {
        f"{info.model.RESOURCE.group_resource}.yaml": HEADER
        + yaml.safe_dump(custom_resource_definition(info), sort_keys=False, width=120, allow_unicode=True)
        for info in CRDS
    }


def main(argv: list[str]) -> int:
    directory = Path(argv[1] if len(argv) > 1 else "manifests/crds")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (directory / name).write_text(text)
        print(f"wrote {directory / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
