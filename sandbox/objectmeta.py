"""ObjectMeta rules every kind shares: names, generated names, labels, annotations, owners, finalizers.

Validation follows apimachinery's `ValidateObjectMeta` and `ValidateObjectMetaUpdate`, with its wording.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sandbox import fielderrors as fe
from sandbox.fielderrors import FieldError
from sandbox.selectors import label_key_problems, label_value_problems

NameCheck = Callable[[str, bool], list[str]]
"""What is wrong with a name (`prefix=True` for a generateName); empty when fine."""

MAX_GENERATED_NAME_LENGTH: Final = 58  # 63 - 5 random characters
_GENERATED_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TOTAL_ANNOTATION_SIZE_LIMIT: Final = 256 * 1024
_SUBDOMAIN_MESSAGE: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_RANDOM: Final = random.Random()


def _mask_trailing_dash(name: str) -> str:
    # A generateName may end in '-': the generated suffix follows it.
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def dns_subdomain_problems(name: str, prefix: bool = False) -> list[str]:
    """`NameIsDNSSubdomain`: the name check of most kinds."""
    value = _mask_trailing_dash(name) if prefix else name
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not _DNS_SUBDOMAIN.match(value):
        problems.append(_SUBDOMAIN_MESSAGE)
    return problems


def dns_label_problems(name: str, prefix: bool = False) -> list[str]:
    """`NameIsDNSLabel`: the name check of namespaces."""
    value = _mask_trailing_dash(name) if prefix else name
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS_LABEL.match(value):
        problems.append(_LABEL_MESSAGE)
    return problems


def generate_name(prefix: str) -> str:
    """`SimpleNameGenerator`: the prefix, cut to 58 characters, plus 5 random characters."""
    return prefix[:MAX_GENERATED_NAME_LENGTH] + "".join(_RANDOM.choice(_GENERATED_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def timestamp(moment: datetime | None = None) -> str:
    """A `metav1.Time` as the server writes it: RFC 3339, seconds, `Z`."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(moment: datetime | None = None) -> str:
    """A `metav1.MicroTime` as the server writes it: RFC 3339 with microseconds and `Z`."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


OBJECT_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
# Pointer fields keep a zero value; every other ObjectMeta field is `omitempty`.
_POINTER_FIELDS: Final = frozenset({"deletionGracePeriodSeconds"})


def normalise_meta(meta: dict[str, Any]) -> None:
    """Decode metadata as ObjectMeta does, in place: unknown fields, nulls and empty values (omitempty) go."""
    for key in list(meta):
        if key not in OBJECT_META_FIELDS or _omitted(key, meta[key]):
            del meta[key]


def _omitted(key: str, value: Any) -> bool:
    if value is None:
        return True
    empty = value in ("", 0, {}, []) and not isinstance(value, bool)
    return empty and key not in _POINTER_FIELDS


def validate_meta(meta: dict[str, Any], *, namespaced: bool, name_check: NameCheck) -> list[FieldError]:
    """`ValidateObjectMeta` for a new object, errors under `metadata.`."""
    errors: list[FieldError] = []
    generate = meta.get("generateName") or ""
    if generate:
        errors.extend(fe.invalid("metadata.generateName", generate, p) for p in name_check(generate, True))
    name = meta.get("name") or ""
    if not name:
        errors.append(fe.required("metadata.name", "name or generateName is required"))
    else:
        errors.extend(fe.invalid("metadata.name", name, problem) for problem in name_check(name, False))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errors.append(fe.required("metadata.namespace"))
        else:
            errors.extend(fe.invalid("metadata.namespace", namespace, p) for p in dns_label_problems(namespace))
    elif namespace:
        errors.append(fe.forbidden("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errors.append(fe.invalid("metadata.generation", generation, "must be greater than or equal to 0"))
    errors.extend(_label_errors(meta.get("labels")))
    errors.extend(_annotation_errors(meta.get("annotations")))
    errors.extend(_owner_errors(meta.get("ownerReferences")))
    errors.extend(_finalizer_errors(meta.get("finalizers")))
    return errors


def validate_meta_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """`ValidateObjectMetaUpdate`: immutable identity, and no new finalizers once deletion started."""
    errors: list[FieldError] = [
        fe.invalid(f"metadata.{key}", new.get(key) or "", "field is immutable")
        for key in ("name", "namespace", "uid")
        if (new.get(key) or "") != (old.get(key) or "")
    ]
    if old.get("deletionTimestamp"):
        added = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if added:
            listed = ", ".join(fe.go_quote(item) for item in added)
            detail = "no new finalizers can be added if the object is being deleted, found new finalizers"
            errors.append(fe.forbidden("metadata.finalizers", f"{detail} []string{{{listed}}}"))
    return errors


def _label_errors(labels: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(labels, dict):
        return errors
    for key, value in labels.items():
        errors.extend(fe.invalid("metadata.labels", key, problem) for problem in label_key_problems(key))
        if isinstance(value, str):
            errors.extend(fe.invalid("metadata.labels", value, problem) for problem in label_value_problems(value))
    return errors


def _annotation_errors(annotations: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(annotations, dict):
        return errors
    total = 0
    for key, value in annotations.items():
        errors.extend(fe.invalid("metadata.annotations", key, p) for p in label_key_problems(key.lower()))
        total += len(key) + len(value if isinstance(value, str) else "")
    if total > _TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(fe.too_long("metadata.annotations", _TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def _owner_errors(owners: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(owners, list):
        return errors
    controllers = []
    for owner in owners:
        if not isinstance(owner, dict):
            continue
        api_version = owner.get("apiVersion") or ""
        version = api_version.rpartition("/")[2]
        if not version:
            errors.append(fe.invalid("metadata.ownerReferences.apiVersion", api_version, "version must not be empty"))
        errors.extend(
            fe.invalid(f"metadata.ownerReferences.{key}", "", f"{key} must not be empty")
            for key in ("kind", "name", "uid")
            if not owner.get(key)
        )
        if owner.get("controller") is True:
            controllers.append(owner)
    if len(controllers) > 1:
        found = ", ".join(f"{item.get('kind')}/{item.get('name')}" for item in controllers)
        errors.append(
            fe.invalid(
                "metadata.ownerReferences",
                owners,
                f'Only one reference can have Controller set to true. Found "true" in references for {found}',
            )
        )
    return errors


def _finalizer_errors(finalizers: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(finalizers, list):
        return errors
    for name in finalizers:
        if isinstance(name, str):
            errors.extend(fe.invalid("metadata.finalizers", name, problem) for problem in label_key_problems(name))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errors.append(
            fe.invalid("metadata.finalizers", finalizers, "finalizer orphan and foregroundDeletion cannot be both set")
        )
    return errors
