"""The generic registry: create, update, patch, delete and list with the real server's semantics.

This is what `k8s.io/apiserver/pkg/registry/generic/registry.Store` does on top of etcd: namespace admission,
system fields (uid, creationTimestamp, generateName), strategies (what create and update may set, generation),
validation, optimistic concurrency (resourceVersion), preconditions, finalizers and deletionTimestamp, and
consistent paginated lists. The HTTP layer (`sandbox.api`) and the built-in controllers both go through it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from sandbox import fielderrors as fe
from sandbox import status
from sandbox.fielderrors import FieldError
from sandbox.objectmeta import (
    generate_name,
    new_uid,
    normalise_meta,
    timestamp,
    validate_meta,
    validate_meta_update,
)
from sandbox.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from sandbox.resources import Catalog, DecodeError, ResourceType
from sandbox.selectors import FieldSelector, LabelSelector
from sandbox.status import ApiError, GroupKind, GroupResource
from sandbox.storage import KeyExistsError, RevisionExpiredError, Storage, StoredObject

PatchType = Literal["json", "merge", "strategic"]
PATCH_CONTENT_TYPES: Final[dict[str, PatchType]] = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}
IMMORTAL_NAMESPACES: Final = frozenset({"default", "kube-system", "kube-public"})
ORPHAN_FINALIZER: Final = "orphan"
FOREGROUND_FINALIZER: Final = "foregroundDeletion"
_GENERATE_NAME_ATTEMPTS: Final = 8
_NAMESPACES: Final = "namespaces"
_NOT_A_MAP: Final = "json: cannot unmarshal array into Go value of type map[string]interface {}"


class ValidationSwitch:
    """Whether CRD schemas and rules are enforced (tests turn it off to store schema-breaking objects)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    uid: str | None = None
    resource_version: str | None = None

    @classmethod
    def from_body(cls, body: Any, propagation_query: str | None = None) -> DeleteOptions:
        """Parse a DeleteOptions body (and the `propagationPolicy` query parameter, which it overrides)."""
        body = body if isinstance(body, dict) else {}
        preconditions = body.get("preconditions") or {}
        policy = body.get("propagationPolicy") or propagation_query
        if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
            raise status.invalid(
                GroupKind("meta.k8s.io", "DeleteOptions"),
                "",
                [fe.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])],
            )
        return cls(
            propagation_policy=policy,
            orphan_dependents=body.get("orphanDependents"),
            uid=preconditions.get("uid"),
            resource_version=preconditions.get("resourceVersion"),
        )


@dataclass(frozen=True, slots=True)
class ListQuery:
    namespace: str | None = None
    labels: LabelSelector = field(default_factory=LabelSelector)
    fields: FieldSelector = field(default_factory=FieldSelector)
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[StoredObject]
    resource_version: int
    continue_token: str | None
    remaining: int | None


@dataclass(frozen=True, slots=True)
class Written:
    """The outcome of an update or patch: the stored object, or the request's object when it was deleted."""

    obj: StoredObject | None
    body: dict[str, Any] | None = None
    created: bool = False


@dataclass(frozen=True, slots=True)
class Deleted:
    """The outcome of a delete: gone (`final` is its last state) or still there, being finalized (`obj`)."""

    obj: StoredObject | None
    final: StoredObject | None
    accepted: bool = False


def parse_resource_version(text: str, what: str = "resourceVersion") -> int:
    try:
        value = int(text)
    except ValueError:
        raise status.bad_request(f"invalid {what}: {text!r}") from None
    if value < 0:
        raise status.bad_request(f"invalid {what}: {text!r}")
    return value


def encode_continue(rv: int, namespace: str, name: str) -> str:
    """An opaque continue token: the revision of the list and the key to start after."""
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{namespace}/{name}\x00"})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        rv = int(data["rv"])
        namespace, _, name = str(data["start"]).rstrip("\x00").partition("/")
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise status.bad_request("continue key is not valid: illegal base64 data") from None
    if data.get("v") != "meta.k8s.io/v1":
        raise status.bad_request(
            f"continue key is not valid: incorrect encoded start resourceVersion (version {data.get('v')})"
        )
    return rv, (namespace, name)


class Registry:
    """Create, read, update, patch, delete and list objects of any served resource."""

    def __init__(self, storage: Storage, catalog: Catalog, validation: ValidationSwitch) -> None:
        self.storage = storage
        self.catalog = catalog
        self.validation = validation

    # reads

    def get(self, resource: ResourceType, namespace: str, name: str) -> StoredObject:
        obj = self.storage.get(resource.storage, namespace if resource.namespaced else "", name)
        if obj is None:
            raise status.not_found(resource.group_resource, name)
        return obj

    def list(self, resource: ResourceType, query: ListQuery) -> ListResult:
        """A list as the real server answers it: consistent (a snapshot at one revision), paginated."""
        self.check_field_selector(resource, query.fields)
        namespace = query.namespace if resource.namespaced else None
        start: tuple[str, str] | None = None
        if query.continue_token:
            if query.resource_version not in (None, "", "0"):
                raise status.bad_request("specifying resource version is not allowed when using continue")
            rv, start = decode_continue(query.continue_token)
            if rv < 0:
                rv = self.storage.revision
            if rv < self.storage.history.floor:
                fresh = encode_continue(-1, *start)
                raise status.resource_expired(status.INCONSISTENT_CONTINUE_MESSAGE, continue_token=fresh)
        elif query.resource_version and query.resource_version != "0":
            requested = parse_resource_version(query.resource_version)
            if requested > self.storage.revision:
                raise status.too_large_resource_version(requested, self.storage.revision)
            exact = query.resource_version_match == "Exact"
            rv = requested if exact else self.storage.revision
            if exact and rv < self.storage.history.floor:
                raise status.resource_expired(status.EXPIRED_LIST_MESSAGE)
        else:
            rv = self.storage.revision
        try:
            objects = self.storage.snapshot(resource.storage, namespace, rv)
        except RevisionExpiredError:
            raise status.resource_expired(status.EXPIRED_LIST_MESSAGE) from None
        if start is not None:
            objects = [obj for obj in objects if (obj.namespace, obj.name) > start]
        if not query.labels.empty or not query.fields.empty:
            objects = [obj for obj in objects if self.matches(resource, obj, query.labels, query.fields)]
        token: str | None = None
        remaining: int | None = None
        if query.limit > 0 and len(objects) > query.limit:
            rest = len(objects) - query.limit
            objects = objects[: query.limit]
            last = objects[-1]
            token = encode_continue(rv, last.namespace, last.name)
            if query.labels.empty and query.fields.empty:
                remaining = rest
        return ListResult(objects, rv, token, remaining)

    def matches(self, resource: ResourceType, obj: StoredObject, labels: LabelSelector, fields: FieldSelector) -> bool:
        if not labels.empty and not labels.matches(obj.labels):
            return False
        return fields.empty or fields.matches(resource.fields(obj))

    def check_field_selector(self, resource: ResourceType, fields: FieldSelector) -> None:
        for label in fields.fields:
            if label not in resource.field_labels:
                raise status.bad_request(f"field label not supported: {label}")

    # writes

    def create(self, resource: ResourceType, namespace: str, body: Any) -> StoredObject:
        obj = self._decode(resource, body)
        meta = obj["metadata"]
        if resource.namespaced:
            if not meta.get("namespace"):
                meta["namespace"] = namespace
            elif meta["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            self._admit_namespace(resource, namespace, meta)
        else:
            meta.pop("namespace", None)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "generation", "managedFields", "selfLink"):
            meta.pop(key, None)
        resource.strategy.prepare_for_create(obj)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = timestamp()
        generated = bool(meta.get("generateName")) and not meta.get("name")
        if generated:
            meta["name"] = generate_name(meta["generateName"])
        errors = validate_meta(meta, namespaced=resource.namespaced, name_check=resource.strategy.name_check)
        errors.extend(resource.strategy.validate(obj, None, self.validation.enabled))
        if errors:
            raise status.invalid(resource.group_kind, meta.get("name") or "", errors)
        if meta.get("resourceVersion"):
            raise status.unknown_server_error(500, "resourceVersion should not be set on objects to be created")
        meta.pop("resourceVersion", None)
        stored_namespace = meta.get("namespace", "") if resource.namespaced else ""
        for _ in range(_GENERATE_NAME_ATTEMPTS):
            try:
                return self.storage.create(resource.storage, stored_namespace, meta["name"], obj)
            except KeyExistsError:
                if not generated:
                    raise status.already_exists(resource.group_resource, meta["name"]) from None
                meta["name"] = generate_name(meta["generateName"])
        raise status.already_exists(resource.group_resource, meta["name"])

    def update(
        self, resource: ResourceType, namespace: str, name: str, body: Any, *, subresource: str | None = None
    ) -> Written:
        """PUT: replace an object (or, via a subresource, its status or finalizers) under optimistic concurrency."""
        obj = self._decode(resource, body)
        meta = obj["metadata"]
        namespace = namespace if resource.namespaced else ""
        _check_name(meta, name)
        if resource.namespaced:
            if not meta.get("namespace"):
                meta["namespace"] = namespace
            elif meta["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
        else:
            meta.pop("namespace", None)
        existing = self.storage.get(resource.storage, namespace, name)
        if existing is None:
            if resource.strategy.allow_create_on_update and subresource is None:
                meta.pop("resourceVersion", None)
                return Written(self.create(resource, namespace, self._to_served(resource, obj)), created=True)
            raise status.not_found(resource.group_resource, name)
        return self._update(resource, obj, existing, subresource)

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        patch_type: PatchType,
        patch: Any,
        *,
        subresource: str | None = None,
    ) -> Written:
        """PATCH: apply a JSON, merge or strategic merge patch to the current object, then update it."""
        namespace = namespace if resource.namespaced else ""
        if patch_type == "strategic" and resource.strategy.merge_rules is None:
            raise status.unsupported_media_type(
                ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
            )
        existing = self.storage.get(resource.storage, namespace, name)
        if existing is None:
            raise status.not_found(resource.group_resource, name)
        current = resource.served_dict(existing)
        try:
            if patch_type == "json":
                patched = json_patch(current, patch)
            elif patch_type == "merge":
                if not isinstance(patch, dict):
                    raise PatchError(f"error decoding patch: {_NOT_A_MAP}", decode=True)
                patched = merge_patch(current, patch)
            else:
                assert resource.strategy.merge_rules is not None
                patched = strategic_merge_patch(current, patch, resource.strategy.merge_rules)
        except PatchError as exc:
            if exc.decode:
                raise status.bad_request(str(exc)) from None
            raise status.invalid_patch() from None
        obj = self._decode(resource, patched, patching=True)
        _check_name(obj["metadata"], name)
        if resource.namespaced and (obj["metadata"].get("namespace") or "") != namespace:
            raise status.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        return self._update(resource, obj, existing, subresource)

    def delete(
        self, resource: ResourceType, namespace: str, name: str, options: DeleteOptions | None = None
    ) -> Deleted:
        """DELETE: remove the object, or mark it (deletionTimestamp) while finalizers remain."""
        options = options or DeleteOptions()
        namespace = namespace if resource.namespaced else ""
        existing = self.storage.get(resource.storage, namespace, name)
        if existing is None:
            raise status.not_found(resource.group_resource, name)
        self._check_preconditions(resource, existing, options)
        if resource.storage == _NAMESPACES and name in IMMORTAL_NAMESPACES:
            raise status.forbidden(resource.group_resource, name, "this namespace may not be deleted")
        data = existing.mutable_copy()
        meta = data["metadata"]
        wanted = _gc_finalizers(list(meta.get("finalizers") or []), options)
        if wanted:
            meta["finalizers"] = wanted
        else:
            meta.pop("finalizers", None)
        kept_by_controller = resource.strategy.before_delete(data)
        if meta.get("finalizers") or kept_by_controller:
            if not meta.get("deletionTimestamp") and int(meta.get("generation") or 0) > 0:
                meta["generation"] = int(meta["generation"]) + 1
            meta.setdefault("deletionTimestamp", timestamp())
            meta["deletionGracePeriodSeconds"] = 0
            obj = existing if data == existing.data else self.storage.update(resource.storage, namespace, name, data)
            return Deleted(obj, None, accepted=options.orphan_dependents is False)
        final = self.storage.delete(resource.storage, namespace, name)
        return Deleted(None, final)

    def delete_collection(
        self, resource: ResourceType, query: ListQuery, options: DeleteOptions | None = None
    ) -> ListResult:
        """DELETE on a collection: delete every listed object (the list before the deletions is answered)."""
        listed = self.list(resource, query)
        for obj in listed.items:
            try:
                self.delete(resource, obj.namespace, obj.name, options)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return listed

    # helpers

    def _update(
        self, resource: ResourceType, obj: dict[str, Any], existing: StoredObject, subresource: str | None
    ) -> Written:
        meta = obj["metadata"]
        old = existing.data  # read-only: stored versions are never mutated
        old_meta = old["metadata"]
        sent_rv = meta.get("resourceVersion")
        if not sent_rv:
            if not resource.strategy.allow_unconditional_update:
                raise status.invalid(
                    GroupKind(resource.group, resource.plural),
                    meta["name"],
                    [fe.invalid("metadata.resourceVersion", 0, "must be specified for an update")],
                )
        elif parse_resource_version(str(sent_rv)) != existing.rv:
            raise status.conflict(resource.group_resource, meta["name"], status.OPTIMISTIC_LOCK_MESSAGE)
        meta["resourceVersion"] = str(existing.rv)
        if meta.get("uid") and meta["uid"] != existing.uid:
            raise status.conflict(
                resource.group_resource,
                meta["name"],
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {existing.uid}",
            )
        if subresource is None:
            if "generation" in old_meta:
                meta["generation"] = old_meta["generation"]
            else:
                meta.pop("generation", None)
            resource.strategy.prepare_for_update(obj, old)
        else:
            resource.strategy.prepare_for_subresource_update(subresource, obj, old)
            meta = obj["metadata"]
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            elif key != "uid":
                meta.pop(key, None)
        errors: list[FieldError] = validate_meta_update(meta, old_meta)
        errors.extend(validate_meta(meta, namespaced=resource.namespaced, name_check=resource.strategy.name_check))
        if subresource is None:
            errors.extend(resource.strategy.validate(obj, old, self.validation.enabled))
        else:
            errors.extend(resource.strategy.validate_subresource(subresource, obj, old, self.validation.enabled))
        if errors:
            raise status.invalid(resource.group_kind, meta["name"], errors)
        namespace = existing.namespace
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not _namespace_finalizers(resource, obj):
            self.storage.delete(resource.storage, namespace, existing.name)
            return Written(None, body=self._to_served(resource, obj))
        if obj == existing.data:
            return Written(existing)
        return Written(self.storage.update(resource.storage, namespace, existing.name, obj))

    def _check_preconditions(self, resource: ResourceType, existing: StoredObject, options: DeleteOptions) -> None:
        target = GroupResource(resource.group, resource.kind)
        if options.uid is not None and options.uid != existing.uid:
            raise status.conflict(
                target,
                existing.name,
                f"the UID in the precondition ({options.uid}) does not match the UID in record ({existing.uid}). "
                "The object might have been deleted and then recreated",
            )
        if options.resource_version is not None and options.resource_version != str(existing.rv):
            raise status.conflict(
                target,
                existing.name,
                f"the ResourceVersion in the precondition ({options.resource_version}) does not match the "
                f"ResourceVersion in record ({existing.rv}). The object might have been modified",
            )

    def _admit_namespace(self, resource: ResourceType, namespace: str, meta: dict[str, Any]) -> None:
        """NamespaceLifecycle admission: the namespace must exist and not be terminating."""
        found = self.storage.get(_NAMESPACES, "", namespace)
        if found is None:
            raise status.not_found(GroupResource("", _NAMESPACES), namespace)
        if (found.data.get("status") or {}).get("phase") == "Terminating":
            name = meta.get("name") or meta.get("generateName") or "Unknown"
            raise status.forbidden(
                resource.group_resource,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
                causes=[
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            )

    def _decode(self, resource: ResourceType, body: Any, *, patching: bool = False) -> dict[str, Any]:
        """Check apiVersion/kind of a body, convert it to the stored form and let the strategy decode it.

        A body whose typed fields do not decode is a 400 naming the kind (apiserver's transformDecodeError); a
        patched object that does not decode is a 422 on the field `patch` (handlers/patch.go).
        """
        if not isinstance(body, dict):
            raise status.bad_request(f"Object '{resource.kind}' is not a JSON object")
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if api_version is not None and api_version != resource.api_version:
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({resource.api_version})"
            )
        if kind is not None and kind != resource.kind:
            raise status.bad_request(f'{kind} in version "{resource.version}" cannot be handled as a {resource.kind}')
        body["apiVersion"] = resource.api_version
        body["kind"] = resource.kind
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise status.bad_request(
                f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
                "metadata is not an object"
            )
        normalise_meta(meta)
        obj = body if resource.identity_view else resource.view.to_storage(body)
        try:
            resource.strategy.decode(obj, self.validation.enabled)
        except DecodeError as exc:
            if patching:
                patched = orjson.dumps(body).decode()
                raise status.invalid(GroupKind("", ""), "", [fe.invalid("patch", patched, str(exc))]) from None
            raise status.bad_request(
                f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: {exc}'
            ) from None
        return obj

    def _to_served(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return obj if resource.identity_view else resource.view.from_storage(obj)


def _check_name(meta: dict[str, Any], name: str) -> None:
    sent = meta.get("name") or ""
    if sent != name:
        raise status.bad_request(f"the name of the object ({sent}) does not match the name on the URL ({name})")


def _gc_finalizers(finalizers: list[str], options: DeleteOptions) -> list[str]:
    """The finalizers a delete leaves: propagation `Orphan` adds `orphan`, `Foreground` adds `foregroundDeletion`."""
    orphan = options.orphan_dependents
    if orphan is None and options.propagation_policy is not None:
        orphan = options.propagation_policy == "Orphan"
    foreground = options.propagation_policy == "Foreground" and options.orphan_dependents is None
    if orphan is None and options.propagation_policy is None:
        return finalizers
    kept = [name for name in finalizers if name not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if orphan:
        kept.append(ORPHAN_FINALIZER)
    if foreground:
        kept.append(FOREGROUND_FINALIZER)
    return kept


def _namespace_finalizers(resource: ResourceType, obj: dict[str, Any]) -> bool:
    return resource.storage == _NAMESPACES and bool((obj.get("spec") or {}).get("finalizers"))
