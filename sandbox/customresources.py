"""Custom resources: serving what a CustomResourceDefinition declares, and the CRD resource itself.

`resource_types(crd)` turns a CRD into one `ResourceType` per served version, whose strategy applies the
version's structural schema (pruning, validation, the immutability rule), the status subresource and generation
rules of apiextensions-apiserver, and its selectableFields.
"""

from __future__ import annotations

from typing import Any, Final

from sandbox import fielderrors as fe
from sandbox.fielderrors import FieldError
from sandbox.objectmeta import timestamp
from sandbox.resources import ALL_VERBS, ResourceType, Strategy, View
from sandbox.schema import CustomResourceSchema, SchemaError

CRD_GROUP: Final = "apiextensions.k8s.io"
CRD_CLEANUP_FINALIZER: Final = "customresourcecleanup.apiextensions.k8s.io"
_CR_VERBS: Final = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")


class CustomResourceStrategy(Strategy):
    """apiextensions' customResourceStrategy for one served version."""

    allow_unconditional_update = False
    merge_rules = None
    generation = True

    def __init__(self, schema: CustomResourceSchema, status_subresource: bool, selectable_fields: tuple[str, ...]):
        self.schema = schema
        self.status_subresource = status_subresource
        self.selectable_fields = selectable_fields

    def decode(self, obj: dict[str, Any], validating: bool) -> None:
        if validating:
            self.schema.prune(obj)

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        if self.status_subresource:
            obj.pop("status", None)
        super().prepare_for_create(obj)

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        if self.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        super().prepare_for_update(new, old)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, validating: bool) -> list[FieldError]:
        return self.schema.validate(obj, old) if validating else []

    def validate_subresource(
        self, subresource: str, obj: dict[str, Any], old: dict[str, Any], validating: bool
    ) -> list[FieldError]:
        return self.schema.validate_status(obj, old) if validating else []

    def field_values(self, data: dict[str, Any]) -> dict[str, str]:
        values = {}
        for path in self.selectable_fields:
            node: Any = data
            for key in path.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, bool):
                values[path] = "true" if node else "false"
            elif isinstance(node, int | str):
                values[path] = str(node)
            else:
                values[path] = ""
        return values


class VersionView(View):
    """A non-storage version of a CRD without conversion webhook: only apiVersion differs ("None" conversion)."""

    def __init__(self, served: str, stored: str) -> None:
        self.served = served
        self.stored = stored

    def to_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"] = self.stored
        return obj

    def from_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        converted = dict(obj)
        converted["apiVersion"] = self.served
        return converted


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resources a CRD serves (one per served version); SchemaError if a schema cannot be used."""
    spec = crd["spec"]
    group = spec["group"]
    names = spec["names"]
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    versions = spec.get("versions") or []
    storage_version = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "")
    found = []
    for version in versions:
        if not version.get("served", True):
            continue
        raw_schema = (version.get("schema") or {}).get("openAPIV3Schema")
        schema = CustomResourceSchema.from_openapi(raw_schema)
        subresources = version.get("subresources") or {}
        status_subresource = "status" in subresources
        selectable = tuple(str(item["jsonPath"]).lstrip(".") for item in version.get("selectableFields") or [])
        view = (
            VersionView(f"{group}/{version['name']}", f"{group}/{storage_version}")
            if version["name"] != storage_version
            else None
        )
        meta_fields = {"metadata.name", "metadata.namespace"} if namespaced else {"metadata.name"}
        resource = ResourceType(
            group,
            version["name"],
            names["kind"],
            names["plural"],
            names.get("singular") or names["kind"].lower(),
            namespaced=namespaced,
            strategy=CustomResourceStrategy(schema, status_subresource, selectable),
            storage=f"{group}/{names['plural']}",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=("status",) if status_subresource else (),
            verbs=_CR_VERBS,
            builtin=False,
            field_labels=frozenset(meta_fields | set(selectable)),
            crd_name=crd["metadata"]["name"],
            **({"view": view} if view is not None else {}),
        )
        found.append(resource)
    return found


class CustomResourceDefinitionStrategy(Strategy):
    """CRDs themselves: cluster-scoped, status subresource, generation, the name rule, usable schemas."""

    allow_unconditional_update = False
    generation = True

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        obj.pop("status", None)
        super().prepare_for_create(obj)

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
        super().prepare_for_update(new, old)

    def before_delete(self, obj: dict[str, Any]) -> bool:
        # The CRD stays, Terminating, until the controller has deleted every instance.
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if CRD_CLEANUP_FINALIZER not in finalizers:
            meta["finalizers"] = [*finalizers, CRD_CLEANUP_FINALIZER]
        conditions = [
            c for c in (obj.setdefault("status", {}).get("conditions") or []) if c.get("type") != "Terminating"
        ]
        previous = next((c for c in (obj["status"].get("conditions") or []) if c.get("type") == "Terminating"), None)
        conditions.append(
            previous
            or {
                "type": "Terminating",
                "status": "True",
                "lastTransitionTime": timestamp(),
                "reason": "InstanceDeletionPending",
                "message": "CustomResourceDefinition marked for deletion; instance deletion pending",
            }
        )
        obj["status"]["conditions"] = conditions
        return True

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, validating: bool) -> list[FieldError]:
        errors: list[FieldError] = []
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [fe.required("spec")]
        group = spec.get("group") or ""
        names = spec.get("names") or {}
        if not group:
            errors.append(fe.required("spec.group"))
        errors.extend(fe.required(f"spec.names.{key}") for key in ("plural", "kind") if not names.get(key))
        expected = f"{names.get('plural', '')}.{group}"
        name = obj["metadata"].get("name") or ""
        if name != expected:
            errors.append(fe.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
        scope = spec.get("scope")
        if scope not in ("Cluster", "Namespaced"):
            errors.append(fe.not_supported("spec.scope", scope or "", ["Cluster", "Namespaced"]))
        versions = spec.get("versions") or []
        if not versions or sum(1 for version in versions if version.get("storage")) != 1:
            errors.append(
                fe.invalid("spec.versions", versions, "must have exactly one version marked as storage version")
            )
        for index, version in enumerate(versions):
            raw = (version.get("schema") or {}).get("openAPIV3Schema")
            try:
                CustomResourceSchema.from_openapi(raw)
            except SchemaError as exc:
                errors.append(fe.invalid(f"spec.versions[{index}].schema.openAPIV3Schema", "", str(exc)))
        if old is not None and (old.get("spec") or {}).get("group") != group:
            errors.append(fe.invalid("spec.group", group, "field is immutable"))
        return errors


def crd_resource() -> ResourceType:
    """`apiextensions.k8s.io/v1` customresourcedefinitions."""
    return ResourceType(
        CRD_GROUP,
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        namespaced=False,
        strategy=CustomResourceDefinitionStrategy(),
        storage=f"{CRD_GROUP}/customresourcedefinitions",
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        verbs=ALL_VERBS,
        field_labels=frozenset({"metadata.name"}),
    )


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status the apiextensions controllers give an accepted CRD: names accepted, established."""
    spec = crd["spec"]
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    previous = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
    for condition in conditions:
        old = previous.get(condition["type"])
        if old and old.get("status") == condition["status"]:
            condition["lastTransitionTime"] = old.get("lastTransitionTime", now)
    stored = [version["name"] for version in spec.get("versions") or [] if version.get("storage")]
    accepted = {key: value for key, value in spec["names"].items()}
    accepted.setdefault("singular", spec["names"]["kind"].lower())
    accepted.setdefault("listKind", f"{spec['names']['kind']}List")
    return {"conditions": conditions, "acceptedNames": accepted, "storedVersions": stored}
