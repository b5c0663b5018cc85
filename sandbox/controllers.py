"""The other controllers a cluster runs that clients notice: namespaces and CustomResourceDefinitions.

- Namespace lifecycle: a new namespace gets its `default` ServiceAccount; a Terminating namespace has its
  content deleted, then its `kubernetes` finalizer removed (through `finalize`), which removes it.
- CRDs: a created or updated CRD is served at once and gets the NamesAccepted and Established conditions; a
  deleted one stays Terminating until its instances are gone, then stops being served.
"""

from __future__ import annotations

import logging
from typing import Final

from sandbox.customresources import CRD_CLEANUP_FINALIZER, established_status, resource_types
from sandbox.kinds import NAMESPACE_FINALIZER
from sandbox.objectmeta import timestamp
from sandbox.registry import DeleteOptions, Registry
from sandbox.resources import ResourceType
from sandbox.schema import SchemaError
from sandbox.status import ApiError
from sandbox.storage import Change
from sandbox.watch import WatchHub
from sandbox.workqueue import WorkQueue

log = logging.getLogger(__name__)

NAMESPACES: Final = "namespaces"
SERVICE_ACCOUNTS: Final = "serviceaccounts"
_BACKGROUND: Final = DeleteOptions(propagation_policy="Background")


class NamespaceController:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.storage = registry.storage
        self._terminating: WorkQueue[str] = WorkQueue("namespace/terminating", self._clean)
        self._created: WorkQueue[str] = WorkQueue("namespace/created", self._service_account)
        self.storage.observe(self._observe)

    def _resource(self, storage: str) -> ResourceType | None:
        resources = [r for r in self.registry.catalog.by_storage(storage) if r.identity_view]
        return resources[0] if resources else None

    def _observe(self, change: Change) -> None:
        if change.storage == NAMESPACES:
            if change.type == "ADDED":
                self._created.add(change.name)
            if change.type != "DELETED" and change.obj.metadata.get("deletionTimestamp"):
                self._terminating.add(change.name)
            return
        if change.namespace and change.type == "DELETED":
            namespace = self.storage.get(NAMESPACES, "", change.namespace)
            if namespace is not None and namespace.metadata.get("deletionTimestamp"):
                self._terminating.add(change.namespace)

    def _service_account(self, name: str) -> None:
        namespace = self.storage.get(NAMESPACES, "", name)
        resource = self._resource(SERVICE_ACCOUNTS)
        if namespace is None or namespace.metadata.get("deletionTimestamp") or resource is None:
            return
        if self.storage.get(SERVICE_ACCOUNTS, name, "default") is None:
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
            try:
                self.registry.create(resource, name, body)
            except ApiError as exc:
                log.debug("sandbox.namespace.service_account_skipped namespace=%s reason=%s", name, exc)

    def _clean(self, name: str) -> None:
        namespace = self.storage.get(NAMESPACES, "", name)
        if namespace is None or not namespace.metadata.get("deletionTimestamp"):
            return
        remaining = 0
        for storage in self.storage.storages():
            resource = self._resource(storage)
            if resource is None or not resource.namespaced:
                continue
            for obj in self.storage.items(storage, name):
                remaining += 1
                if not obj.metadata.get("deletionTimestamp"):
                    try:
                        self.registry.delete(resource, name, obj.name, _BACKGROUND)
                    except ApiError as exc:
                        if exc.code != 404:
                            raise
                    if self.storage.get(storage, name, obj.name) is None:
                        remaining -= 1
        if remaining:
            return
        finalizers = (namespace.data.get("spec") or {}).get("finalizers") or []
        if NAMESPACE_FINALIZER in finalizers:
            resource = self._resource(NAMESPACES)
            assert resource is not None
            body = resource.served_dict(namespace)
            body["spec"]["finalizers"] = [f for f in finalizers if f != NAMESPACE_FINALIZER]
            self.registry.update(resource, "", name, body, subresource="finalize")


class CustomResourceDefinitionController:
    def __init__(self, registry: Registry, crd_resource: ResourceType, hub: WatchHub) -> None:
        self.registry = registry
        self.storage = registry.storage
        self.crd_resource = crd_resource
        self.hub = hub
        self._queue: WorkQueue[str] = WorkQueue("customresourcedefinitions", self._reconcile)
        self.storage.observe(self._observe)

    def _observe(self, change: Change) -> None:
        if change.storage != self.crd_resource.storage:
            return
        name = change.name
        catalog = self.registry.catalog
        if change.type == "DELETED":
            for resource in catalog.by_crd(name):
                catalog.remove(resource)
                self.storage.drop_storage(resource.storage)
            return
        if change.prev is None or change.prev.data.get("spec") != change.obj.data.get("spec"):
            try:
                served = resource_types(change.obj.data)
            except SchemaError as exc:  # refused by validation before it gets here; keep serving what was
                log.warning("sandbox.crd.unusable name=%s error=%s", name, exc)
            else:
                for resource in catalog.by_crd(name):
                    catalog.remove(resource)
                for resource in served:
                    catalog.add(resource)
        self._queue.add(name)

    def _reconcile(self, name: str) -> None:
        crd = self.storage.get(self.crd_resource.storage, "", name)
        if crd is None:
            return
        if crd.metadata.get("deletionTimestamp"):
            self._clean(name)
            return
        wanted = established_status(crd.data, timestamp())
        current = crd.data.get("status") or {}
        if {key: current.get(key) for key in wanted} == wanted:
            return
        body = self.crd_resource.served_dict(crd)
        body["status"] = {**current, **wanted}
        self.registry.update(self.crd_resource, "", name, body, subresource="status")

    def _clean(self, name: str) -> None:
        remaining = 0
        for resource in self.registry.catalog.by_crd(name):
            if not resource.identity_view:
                continue
            for obj in self.storage.items(resource.storage):
                remaining += 1
                if not obj.metadata.get("deletionTimestamp"):
                    self.registry.delete(resource, obj.namespace, obj.name, _BACKGROUND)
                    if self.storage.get(resource.storage, obj.namespace, obj.name) is None:
                        remaining -= 1
        if remaining:
            return
        current = self.storage.get(self.crd_resource.storage, "", name)
        if current is None:
            return
        for resource in self.registry.catalog.by_crd(name):
            self.hub.close_storage(resource.storage)
        body = self.crd_resource.served_dict(current)
        body["metadata"]["finalizers"] = [
            f for f in body["metadata"].get("finalizers") or [] if f != CRD_CLEANUP_FINALIZER
        ]
        self.registry.update(self.crd_resource, "", name, body)
