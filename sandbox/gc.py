"""The garbage collector: ownerReferences handled as the controller manager's garbage collector does.

- A dependent whose owners are all gone (no object with the owner's uid, name and kind, in its namespace) is
  deleted in the background; one that still has an owner loses only its dangling references.
- An owner deleted with `propagationPolicy: Orphan` keeps the `orphan` finalizer until every dependent lost its
  reference to it.
- An owner deleted with `propagationPolicy: Foreground` keeps `foregroundDeletion` while its dependents are
  deleted, until no dependent with `blockOwnerDeletion: true` is left.
"""

from __future__ import annotations

from typing import Any, Final

from sandbox.registry import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, DeleteOptions, Registry
from sandbox.resources import ResourceType
from sandbox.status import ApiError
from sandbox.storage import Change, StoredObject
from sandbox.workqueue import WorkQueue

Ref = tuple[str, str, str]  # storage, namespace, name
_BACKGROUND: Final = DeleteOptions(propagation_policy="Background")


def _owner_refs(obj: StoredObject | dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj.metadata if isinstance(obj, StoredObject) else obj["metadata"]
    return [ref for ref in meta.get("ownerReferences") or [] if isinstance(ref, dict) and ref.get("uid")]


class GarbageCollector:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.storage = registry.storage
        self._dependents: WorkQueue[Ref] = WorkQueue("garbage-collector/dependents", self._process_dependent)
        self._owners: WorkQueue[Ref] = WorkQueue("garbage-collector/owners", self._process_owner)
        self.storage.observe(self._observe)

    def _observe(self, change: Change) -> None:
        obj = change.obj
        if change.type == "DELETED":
            for storage, dependent in self.storage.dependents(obj.uid):
                self._dependents.add((storage, dependent.namespace, dependent.name))
            for ref in _owner_refs(obj):
                owner = self.storage.by_uid(ref["uid"])
                if owner is not None and FOREGROUND_FINALIZER in (owner.metadata.get("finalizers") or []):
                    storage_key = self.storage.storage_of(owner.uid)
                    if storage_key is not None:
                        self._owners.add((storage_key, owner.namespace, owner.name))
            return
        refs = _owner_refs(obj)
        previous = _owner_refs(change.prev) if change.prev is not None else []
        if refs and refs != previous:
            self._dependents.add((change.storage, change.namespace, change.name))
        finalizers = obj.metadata.get("finalizers") or []
        if obj.metadata.get("deletionTimestamp") and (
            ORPHAN_FINALIZER in finalizers or FOREGROUND_FINALIZER in finalizers
        ):
            self._owners.add((change.storage, change.namespace, change.name))

    def _resource(self, storage: str) -> ResourceType | None:
        resources = self.registry.catalog.by_storage(storage)
        identity = [resource for resource in resources if resource.identity_view] or resources
        return identity[0] if identity else None

    def _owner_alive(self, ref: dict[str, Any], dependent: StoredObject) -> StoredObject | None:
        owner = self.storage.by_uid(ref["uid"])
        if owner is None or owner.name != ref.get("name"):
            return None
        if owner.namespace and owner.namespace != dependent.namespace:
            return None  # a namespaced owner must be in the dependent's namespace
        storage = self.storage.storage_of(owner.uid)
        resource = self._resource(storage) if storage else None
        if resource is None or resource.kind != ref.get("kind"):
            return None
        return owner

    def _process_dependent(self, ref: Ref) -> None:
        storage, namespace, name = ref
        obj = self.storage.get(storage, namespace, name)
        resource = self._resource(storage)
        if obj is None or resource is None or obj.metadata.get("deletionTimestamp"):
            return
        refs = _owner_refs(obj)
        dangling, waiting, solid = [], [], []
        for owner_ref in refs:
            owner = self._owner_alive(owner_ref, obj)
            if owner is None:
                dangling.append(owner_ref)
            elif owner.metadata.get("deletionTimestamp") and FOREGROUND_FINALIZER in (
                owner.metadata.get("finalizers") or []
            ):
                waiting.append(owner_ref)
            else:
                solid.append(owner_ref)
        if not dangling and not waiting:
            return
        if solid:
            self._set_owner_refs(resource, obj, solid)
            return
        policy = "Foreground" if waiting else "Background"
        self._delete(resource, obj, DeleteOptions(propagation_policy=policy, uid=obj.uid))

    def _process_owner(self, ref: Ref) -> None:
        storage, namespace, name = ref
        owner = self.storage.get(storage, namespace, name)
        resource = self._resource(storage)
        if owner is None or resource is None or not owner.metadata.get("deletionTimestamp"):
            return
        finalizers = owner.metadata.get("finalizers") or []
        dependents = self.storage.dependents(owner.uid)
        if ORPHAN_FINALIZER in finalizers:
            for dependent_storage, dependent in dependents:
                dependent_resource = self._resource(dependent_storage)
                if dependent_resource is not None:
                    kept = [r for r in _owner_refs(dependent) if r["uid"] != owner.uid]
                    self._set_owner_refs(dependent_resource, dependent, kept)
            self._remove_finalizer(resource, owner, ORPHAN_FINALIZER)
        elif FOREGROUND_FINALIZER in finalizers:
            blocking = False
            for dependent_storage, dependent in dependents:
                dependent_resource = self._resource(dependent_storage)
                if dependent_resource is None:
                    continue
                if not dependent.metadata.get("deletionTimestamp"):
                    self._delete(
                        dependent_resource, dependent, DeleteOptions(propagation_policy="Foreground", uid=dependent.uid)
                    )
                ref_to_owner = next((r for r in _owner_refs(dependent) if r["uid"] == owner.uid), {})
                if ref_to_owner.get("blockOwnerDeletion") and self.storage.get(
                    dependent_storage, dependent.namespace, dependent.name
                ):
                    blocking = True
            if not blocking:
                self._remove_finalizer(resource, owner, FOREGROUND_FINALIZER)

    def _delete(self, resource: ResourceType, obj: StoredObject, options: DeleteOptions) -> None:
        try:
            self.registry.delete(resource, obj.namespace, obj.name, options)
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    def _set_owner_refs(self, resource: ResourceType, obj: StoredObject, refs: list[dict[str, Any]]) -> None:
        data = resource.served_dict(obj)
        if refs:
            data["metadata"]["ownerReferences"] = refs
        else:
            data["metadata"].pop("ownerReferences", None)
        self.registry.update(resource, obj.namespace, obj.name, data)

    def _remove_finalizer(self, resource: ResourceType, obj: StoredObject, finalizer: str) -> None:
        current = self.storage.get(resource.storage, obj.namespace, obj.name)
        if current is None:
            return
        data = resource.served_dict(current)
        data["metadata"]["finalizers"] = [f for f in data["metadata"].get("finalizers") or [] if f != finalizer]
        self.registry.update(resource, obj.namespace, obj.name, data)
