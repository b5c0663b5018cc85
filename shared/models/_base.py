"""Building blocks of every model: camelCase aliases, unknown fields kept, Kubernetes timestamps, clear errors."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.apiresource import ApiResource
from shared.duration import DURATION_PATTERN
from shared.kubetime import as_utc, format_time

# The JSON types exactly as the CRD schema has them: pydantic's lax mode would read "5" or true as an integer, a
# zone-less string, a date or epoch seconds as a time - all of which the API server refuses.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a JSON integer")
        return int(value)  # 5.0 is an integer to the API server too
    return value


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a zone, e.g. 2026-01-02T03:04:05Z")
    return value


Int = Annotated[int, BeforeValidator(_json_integer)]
"""An integer field: a JSON integer (or an integral number), never a string or a boolean."""

NonNegativeInt = Annotated[int, Field(ge=0), BeforeValidator(_json_integer)]  # the bound first, so the schema has it

Bool = Annotated[bool, Strict()]
"""A boolean field: JSON true or false, never a string or a number."""

Time = Annotated[
    datetime, BeforeValidator(_rfc3339), AfterValidator(as_utc), PlainSerializer(format_time, return_type=str)
]
"""A timestamp field: RFC 3339 with a zone, parsed to an aware UTC datetime, written back with `Z`."""

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=64)]
"""A Go-style duration string such as `30m` or `1h30m` (see shared.duration)."""


class K8sModel(BaseModel):
    """Base of every nested model: camelCase on the wire, unknown fields preserved on a round trip."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        use_enum_values=False,
        validate_assignment=False,
        # A model's validator is built on its first use, not at import: each process builds only the models it
        # validates (the executor never validates a RemediationRequest; issue 14, start-up CPU).
        defer_build=True,
    )


class OwnerReference(K8sModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: Bool | None = None
    block_owner_deletion: Bool | None = None


class ObjectMeta(K8sModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: Int | None = None
    creation_timestamp: Time | None = None
    deletion_timestamp: Time | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None


class ObjectReference(K8sModel):
    """A reference to another object; namespace defaults to the referrer's."""

    kind: str | None = Field(None, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(None, max_length=63)
    uid: str | None = Field(None, max_length=36)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(K8sModel):
    """A condition following the Kubernetes API conventions (metav1.Condition)."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: ConditionStatus
    observed_generation: NonNegativeInt | None = None
    last_transition_time: Time
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(max_length=32768)


def _one_per_type(conditions: list[Condition]) -> list[Condition]:
    types = [condition.type for condition in conditions]
    duplicates = sorted({t for t in types if types.count(t) > 1})
    if duplicates:
        raise ValueError(f"one condition per type (a list-map keyed by type); repeated: {', '.join(duplicates)}")
    return conditions


Conditions = Annotated[
    list[Condition],
    AfterValidator(_one_per_type),
    Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


class ModelError(ValueError):
    """An object that does not match its model; the message names each field path and its bad value."""

    def __init__(self, kind: str, key: str, problems: list[str]) -> None:
        self.kind = kind
        self.key = key
        self.problems = problems
        super().__init__(f"{kind} {key}: " + "; ".join(problems))


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: the dotted field path (wire names, list indexes) and the offending value."""
    lines = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        if item["type"] == "missing":
            lines.append(f"{path}: required field is missing")
        else:
            lines.append(f"{path}: {item['msg']} (got {item['input']!r:.200})")
    return lines


class KubeObject(K8sModel):
    """A top-level Kubernetes object of one of our kinds."""

    RESOURCE: ClassVar[ApiResource]

    api_version: str
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @model_validator(mode="before")
    @classmethod
    def _fill_type_meta(cls, data: Any) -> Any:
        # List items of some servers omit apiVersion/kind; the resource says what they are.
        if isinstance(data, dict) and ("apiVersion" not in data or "kind" not in data):
            data = {"apiVersion": cls.RESOURCE.api_version, "kind": cls.RESOURCE.kind, **data}
        return data

    @classmethod
    def from_k8s(cls, obj: dict[str, Any]) -> Self:
        """Parse an object as the API server sends it; raise ModelError naming every bad field."""
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            meta = meta if isinstance(meta, dict) else {}
            key = f"{meta.get('namespace') or ''}/{meta.get('name') or meta.get('generateName') or '?'}"
            raise ModelError(cls.RESOURCE.kind, key.lstrip("/"), describe_validation_error(exc)) from None

    def to_k8s(self) -> dict[str, Any]:
        """The object as JSON-ready data with wire names; fields never set are left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def key(self) -> str:
        """`namespace/name`, the key of this object in caches and work queues."""
        return f"{self.metadata.namespace}/{self.metadata.name}" if self.metadata.namespace else f"{self.metadata.name}"
