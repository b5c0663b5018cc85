"""The built-in kinds the controllers use: Namespace, Event (`v1` and `events.k8s.io/v1`), ServiceAccount, Lease;
and Deployment (stored as sent), where `kubectl kubernaut` reads the orchestrator's settings.

Each strategy carries the rules of the real registry strategy that matter to a client: what create and update
may set, the validations a controller can trip over (with the real wording) and the field selectors served.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sandbox import fielderrors as fe
from sandbox.fielderrors import FieldError
from sandbox.microtime import MicroTimeError, parse_micro_time
from sandbox.objectmeta import dns_label_problems, dns_subdomain_problems, micro_timestamp, timestamp
from sandbox.patch import MergeRules
from sandbox.resources import DecodeError, ResourceType, Strategy, View, deep_copy
from sandbox.selectors import label_key_problems

NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
NAMESPACE_FINALIZER: Final = "kubernetes"
EVENT_TYPES: Final = ("Normal", "Warning")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _normalise_times(
    obj: dict[str, Any], seconds: tuple[tuple[str, ...], ...], micro: tuple[tuple[str, ...], ...]
) -> None:
    """Rewrite `metav1.Time` (seconds) and `metav1.MicroTime` fields as the server serialises them.

    A MicroTime the server's decoder refuses (not exactly six fractional digits, say) raises DecodeError with the
    server's words; a seconds Time is read leniently.
    """
    for path in seconds:
        node = _parent(obj, path)
        if node is not None:
            parsed = _parse_time(node.get(path[-1]))
            if parsed is not None:
                node[path[-1]] = timestamp(parsed)
    for path in micro:
        node = _parent(obj, path)
        if node is not None and path[-1] in node:
            try:
                instant = parse_micro_time(node[path[-1]])
            except MicroTimeError as exc:
                raise DecodeError(str(exc)) from None
            if instant is not None:
                node[path[-1]] = micro_timestamp(instant)


def _parent(obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = obj
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


class NamespaceStrategy(Strategy):
    """Namespaces: the `kubernetes` finalizer, phase in status, the metadata.name label, a `finalize` subresource."""

    name_check = staticmethod(dns_label_problems)

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        finalizers = list(spec.get("finalizers") or [])
        if NAMESPACE_FINALIZER not in finalizers:
            finalizers.append(NAMESPACE_FINALIZER)
        spec["finalizers"] = finalizers
        obj["status"] = {"phase": "Active"}
        self._label(obj)

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        spec = new.setdefault("spec", {})
        spec["finalizers"] = deep_copy((old.get("spec") or {}).get("finalizers") or [])
        if "status" in old:
            new["status"] = deep_copy(old["status"])
        self._label(new)

    def prepare_for_subresource_update(self, subresource: str, new: dict[str, Any], old: dict[str, Any]) -> None:
        if subresource == "finalize":
            finalizers = (new.get("spec") or {}).get("finalizers") or []
            new.clear()
            new.update(deep_copy(old))
            new.setdefault("spec", {})["finalizers"] = finalizers
        else:
            super().prepare_for_subresource_update(subresource, new, old)

    def before_delete(self, obj: dict[str, Any]) -> bool:
        # The namespace controller removes the content, then the `kubernetes` finalizer, then the namespace.
        if (obj.get("spec") or {}).get("finalizers"):
            obj.setdefault("status", {})["phase"] = "Terminating"
            return True
        return False

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, validating: bool) -> list[FieldError]:
        errors = []
        for name in (obj.get("spec") or {}).get("finalizers") or []:
            if "/" not in name and name != NAMESPACE_FINALIZER:
                errors.append(
                    fe.invalid(
                        "spec.finalizers", name, "name is neither a standard finalizer name nor is it fully qualified"
                    )
                )
            else:
                errors.extend(fe.invalid("spec.finalizers", name, p) for p in label_key_problems(name))
        return errors

    def field_values(self, data: dict[str, Any]) -> dict[str, str]:
        return {"status.phase": str((data.get("status") or {}).get("phase", ""))}

    @staticmethod
    def _label(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        labels = dict(meta.get("labels") or {})
        labels[NAMESPACE_NAME_LABEL] = meta.get("name", "")
        meta["labels"] = labels


_EVENT_SECONDS: Final = (("firstTimestamp",), ("lastTimestamp",))
_EVENT_MICRO: Final = (("eventTime",), ("series", "lastObservedTime"))


class EventStrategy(Strategy):
    """Events through `v1`: created on update, legacy validation (namespace of the involved object)."""

    allow_create_on_update = True
    strict = False  # events.k8s.io/v1 validates new events strictly

    def decode(self, obj: dict[str, Any], validating: bool) -> None:
        _normalise_times(obj, _EVENT_SECONDS, _EVENT_MICRO)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, validating: bool) -> list[FieldError]:
        errors = self._legacy(obj)
        if self.strict and old is None:
            errors.extend(self._strict(obj))
        return errors

    def _legacy(self, obj: dict[str, Any]) -> list[FieldError]:
        errors: list[FieldError] = []
        namespace = obj["metadata"].get("namespace") or ""
        involved = obj.get("involvedObject") or {}
        involved_namespace = involved.get("namespace") or ""
        controller_field = "reportingController" if self.strict else "reportingComponent"
        mismatch = fe.invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace")
        if not obj.get("eventTime"):
            if not involved_namespace:
                if namespace not in ("", "default"):
                    errors.append(mismatch)
            elif namespace != involved_namespace:
                errors.append(mismatch)
        else:
            if not involved_namespace and namespace not in ("default", "kube-system"):
                errors.append(mismatch)
            controller = obj.get("reportingComponent") or ""
            if not controller:
                errors.append(fe.required(controller_field))
            errors.extend(fe.invalid(controller_field, controller, p) for p in label_key_problems(controller))
            for key, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
                value = obj.get(key) or ""
                if not value:
                    errors.append(fe.required(key))
                if len(value) > limit:
                    errors.append(fe.invalid(key, "", f"can have at most {limit} characters"))
            if len(obj.get("message") or "") > 1024:
                errors.append(fe.invalid("message", "", "can have at most 1024 characters"))
        errors.extend(fe.invalid("namespace", namespace, p) for p in dns_subdomain_problems(namespace))
        return errors

    @staticmethod
    def _strict(obj: dict[str, Any]) -> list[FieldError]:
        errors: list[FieldError] = []
        series = obj.get("series")
        if isinstance(series, dict):
            if int(series.get("count") or 0) < 2:
                errors.append(fe.invalid("series.count", "", "should be at least 2"))
            if not series.get("lastObservedTime"):
                errors.append(fe.required("series.lastObservedTime"))
        if not obj.get("eventTime"):
            errors.append(fe.required("eventTime"))
        if obj.get("type") not in EVENT_TYPES:
            errors.append(fe.invalid("type", "", f"has invalid value: {obj.get('type') or ''}"))
        errors.extend(
            fe.invalid(key, "", "needs to be unset")
            for key in ("firstTimestamp", "lastTimestamp", "count")
            if obj.get(key)
        )
        source = obj.get("source") or {}
        if source.get("component") or source.get("host"):
            errors.append(fe.invalid("source", "", "needs to be unset"))
        return errors

    def field_values(self, data: dict[str, Any]) -> dict[str, str]:
        involved = data.get("involvedObject") or {}
        source = data.get("source") or {}
        values = {
            f"involvedObject.{key}": str(involved.get(key, ""))
            for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        }
        values.update(
            reason=str(data.get("reason", "")),
            reportingComponent=str(data.get("reportingComponent", "")),
            source=str(source.get("component", "")),
            type=str(data.get("type", "")),
        )
        return values


class StrictEventStrategy(EventStrategy):
    """Events through `events.k8s.io/v1`: new events must carry eventTime, reporting controller, action, type."""

    strict = True


# events.k8s.io/v1 field name -> core v1 field name
_EVENTS_V1_RENAMES: Final = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_CORE_RENAMES: Final = {core: v1 for v1, core in _EVENTS_V1_RENAMES.items()}


class EventsV1View(View):
    """`events.k8s.io/v1` Events over `v1` storage: the same objects under other field names."""

    def to_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        converted = {_EVENTS_V1_RENAMES.get(key, key): value for key, value in obj.items()}
        converted["apiVersion"] = "v1"
        return converted

    def from_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        converted = {_CORE_RENAMES.get(key, key): value for key, value in obj.items()}
        converted["apiVersion"] = "events.k8s.io/v1"
        return converted

    def field_label(self, label: str) -> str:
        head, dot, rest = label.partition(".")
        return _EVENTS_V1_RENAMES.get(head, head) + dot + rest


class LeaseStrategy(Strategy):
    """Leases: MicroTime renew and acquire times, positive durations."""

    def decode(self, obj: dict[str, Any], validating: bool) -> None:
        _normalise_times(obj, (), (("spec", "acquireTime"), ("spec", "renewTime")))

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, validating: bool) -> list[FieldError]:
        errors: list[FieldError] = []
        spec = obj.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        if isinstance(duration, int) and duration <= 0:
            errors.append(fe.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if isinstance(transitions, int) and transitions < 0:
            errors.append(fe.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
        if spec.get("preferredHolder") and not spec.get("strategy"):
            errors.append(fe.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
        return errors


class ServiceAccountStrategy(Strategy):
    """ServiceAccounts: a delete answers with the deleted object."""

    returns_deleted_object = True
    merge_rules = MergeRules(
        keyed_lists={
            ("metadata", "ownerReferences"): "uid",
            ("secrets",): "name",
            ("imagePullSecrets",): "name",
        },
        primitive_merge_lists=frozenset({("metadata", "finalizers")}),
    )


class DeploymentStrategy(Strategy):
    """Deployments, stored as sent (no controller rolls them out): `kubectl kubernaut explain` reads the
    orchestrator's settings from its Deployment's env, and the demo records that env in one."""

    generation = True


_META_FIELDS: Final = frozenset({"metadata.name", "metadata.namespace"})
_EVENT_FIELDS: Final = _META_FIELDS | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}


def builtin_resources() -> list[ResourceType]:
    """The built-in resources, in discovery order."""
    events = EventStrategy()
    return [
        ResourceType(
            "",
            "v1",
            "Namespace",
            "namespaces",
            "namespace",
            namespaced=False,
            strategy=NamespaceStrategy(),
            storage="namespaces",
            short_names=("ns",),
            subresources=("finalize", "status"),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            field_labels=frozenset({"metadata.name", "status.phase"}),
        ),
        ResourceType(
            "",
            "v1",
            "Event",
            "events",
            "event",
            namespaced=True,
            strategy=events,
            storage="events",
            short_names=("ev",),
            field_labels=_EVENT_FIELDS,
        ),
        ResourceType(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            namespaced=True,
            strategy=ServiceAccountStrategy(),
            storage="serviceaccounts",
            short_names=("sa",),
            field_labels=_META_FIELDS,
        ),
        ResourceType(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            namespaced=True,
            strategy=StrictEventStrategy(),
            storage="events",
            short_names=("ev",),
            view=EventsV1View(),
            field_labels=_META_FIELDS
            | {
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "regarding.apiVersion",
                "regarding.resourceVersion",
                "regarding.fieldPath",
                "reason",
                "reportingController",
                "type",
            },
        ),
        ResourceType(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            namespaced=True,
            strategy=DeploymentStrategy(),
            storage="apps/deployments",
            short_names=("deploy",),
            categories=("all",),
            subresources=("status",),
            field_labels=_META_FIELDS,
        ),
        ResourceType(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            "lease",
            namespaced=True,
            strategy=LeaseStrategy(),
            storage="coordination.k8s.io/leases",
            field_labels=_META_FIELDS,
        ),
    ]
