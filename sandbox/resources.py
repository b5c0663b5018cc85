"""Resource types and the catalog the API serves: what discovery lists and what a request path resolves to.

A `ResourceType` is one resource in one group version (`remediationrequests` in `kubernaut.ai/v1alpha1`). Its
`Strategy` holds the kind's rules (what create and update may set, validation, generation, field selectors), as
a registry strategy does in the real server. Resources that share storage (`events` in `v1` and in
`events.k8s.io/v1`) have the same `storage` key and a `View` that converts between the stored and served forms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from sandbox.fielderrors import FieldError
from sandbox.objectmeta import NameCheck, dns_subdomain_problems
from sandbox.patch import OBJECT_META_RULES, MergeRules
from sandbox.status import GroupKind, GroupResource
from sandbox.storage import StoredObject

ALL_VERBS: Final = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS: Final = {"status": ("get", "patch", "update"), "finalize": ("update",)}


class DecodeError(ValueError):
    """A body the server's decoder refuses (its typed fields do not read); the message is the decoder's."""


class Strategy:
    """A kind's rules; the defaults are those of a plain namespaced kind without subresources.

    Every hook works on the stored form of the object (a plain dict the caller owns).
    """

    allow_create_on_update: bool = False
    allow_unconditional_update: bool = True
    returns_deleted_object: bool = False
    name_check: NameCheck = staticmethod(dns_subdomain_problems)
    merge_rules: MergeRules | None = OBJECT_META_RULES  # None: strategic merge patch is not accepted
    generation: bool = False  # keeps metadata.generation (CRs, CRDs)

    def decode(self, obj: dict[str, Any], validating: bool) -> None:
        """What decoding a request body does to it (pruning unknown fields of a CR); DecodeError if it cannot."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Clear or set what a create may not choose (status behind a subresource, generation)."""
        if self.generation:
            obj["metadata"]["generation"] = 1

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """Keep what an update of the main resource may not change; bump generation on spec changes."""
        if self.generation and _without(new, "metadata") != _without(old, "metadata"):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1

    def prepare_for_subresource_update(self, subresource: str, new: dict[str, Any], old: dict[str, Any]) -> None:
        """Keep everything but what the subresource owns: an update of `status` changes only the status."""
        kept = new.get("status")
        new.clear()
        new.update(deep_copy(old))
        if kept is None:
            new.pop("status", None)
        else:
            new["status"] = kept

    def before_delete(self, obj: dict[str, Any]) -> bool:
        """Prepare a delete (a copy of the stored object); True keeps the object until a controller is done."""
        return False

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, validating: bool) -> list[FieldError]:
        """Kind-specific errors of a created (`old` None) or updated object."""
        return []

    def validate_subresource(
        self, subresource: str, obj: dict[str, Any], old: dict[str, Any], validating: bool
    ) -> list[FieldError]:
        return self.validate(obj, old, validating)

    def field_values(self, data: dict[str, Any]) -> dict[str, str]:
        """The values field selectors see, beyond metadata.name and metadata.namespace."""
        return {}


def _without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in obj.items() if name != key}


def deep_copy(value: Any) -> Any:
    """A deep copy of JSON data (faster than copy.deepcopy for plain dicts and lists)."""
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value


class View:
    """Conversion between the stored form and the form one group version serves; identity by default."""

    def to_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def from_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def field_label(self, label: str) -> str:
        """The stored form's field label for a label of the served form."""
        return label


IDENTITY: Final = View()


@dataclass(frozen=True, eq=False)
class ResourceType:
    """One resource in one group version, with everything needed to serve it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    strategy: Strategy
    storage: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    builtin: bool = True  # a compiled-in type: list items carry no apiVersion/kind
    view: View = IDENTITY
    field_labels: frozenset[str] = field(default_factory=frozenset)
    crd_name: str | None = None  # the CustomResourceDefinition that defines it

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    @property
    def identity_view(self) -> bool:
        return self.view is IDENTITY

    def served(self, obj: StoredObject) -> bytes:
        """The object's bytes as this group version serves them (cached per version)."""
        if self.identity_view:
            return obj.raw
        return obj.cached(("served", id(self)), lambda: _dumps(self.view.from_storage(obj.data)))

    def served_dict(self, obj: StoredObject) -> dict[str, Any]:
        """A fresh mutable copy of the object in this group version's form."""
        if self.identity_view:
            return obj.mutable_copy()
        return self.view.from_storage(obj.mutable_copy())

    def list_item(self, obj: StoredObject) -> bytes:
        """The object's bytes as an item of a list: built-in kinds leave out apiVersion and kind."""
        if not self.builtin:
            return self.served(obj)

        def build() -> bytes:
            data = self.view.from_storage(obj.data) if not self.identity_view else obj.data
            return _dumps({key: value for key, value in data.items() if key not in ("apiVersion", "kind")})

        return obj.cached(("item", id(self)), build)

    def fields(self, obj: StoredObject) -> dict[str, str]:
        """Field selector values of an object, under this group version's field labels."""

        def build() -> dict[str, str]:
            values = {"metadata.name": obj.name}
            if self.namespaced:
                values["metadata.namespace"] = obj.namespace
            values.update(self.strategy.field_values(obj.data))
            if self.identity_view:
                return values
            return {label: values.get(self.view.field_label(label), "") for label in self.field_labels}

        return obj.cached(("fields", id(self)), build)


def _dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)


class Catalog:
    """Every resource the sandbox serves, by group version and plural; what discovery lists."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}

    def add(self, resource: ResourceType) -> None:
        self._types[(resource.group, resource.version, resource.plural)] = resource

    def remove(self, resource: ResourceType) -> None:
        self._types.pop((resource.group, resource.version, resource.plural), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for resource in self._types.values():
            if resource.group == group and resource.version == version and resource.kind == kind:
                return resource
        return None

    def by_storage(self, storage: str) -> list[ResourceType]:
        return [resource for resource in self._types.values() if resource.storage == storage]

    def by_crd(self, crd_name: str) -> list[ResourceType]:
        return [resource for resource in self._types.values() if resource.crd_name == crd_name]

    def group_versions(self, group: str) -> list[str]:
        versions: list[str] = []
        for resource in self._types.values():
            if resource.group == group and resource.version not in versions:
                versions.append(resource.version)
        return versions

    def groups(self) -> list[str]:
        """Named groups, in the order they were first served ("" — the core group — left out)."""
        groups: list[str] = []
        for resource in self._types.values():
            if resource.group and resource.group not in groups:
                groups.append(resource.group)
        return groups

    def in_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self._types.values() if r.group == group and r.version == version]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))
