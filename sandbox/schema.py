"""Structural schemas of CRDs: pruning, defaulting and validation as apiextensions-apiserver does them.

An incoming custom resource is first pruned (unknown fields dropped silently, `null`s of non-nullable fields
without a default dropped), then defaulted, then validated. Validation follows kube-openapi's order and words:
type, string (maxLength, minLength, pattern), format, number, array (items, then minItems/maxItems), enum, object
(min/maxProperties, additionalProperties, properties, required). Errors carry the paths kube-openapi builds
(`spec.a`, `spec.list[0].b`). Updates are ratcheted: an unchanged part of the object is not re-validated.

`x-kubernetes-validations` supports only the transition rule `self == oldSelf`; other rules are ignored with a
logged warning (see sandbox/README.md).
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sandbox import fielderrors as fe
from sandbox.fielderrors import FieldError

log = logging.getLogger(__name__)

UNCHECKED_RULES_MESSAGE: Final = (
    "some validation rules were not checked because the object was invalid; correct the existing errors to "
    "complete validation"
)
# Schema errors that stop CEL rules from running (apiextensions' hasBlockingErr).
_BLOCKING: Final = frozenset(
    {
        fe.ErrorType.NOT_SUPPORTED,
        fe.ErrorType.REQUIRED,
        fe.ErrorType.TOO_LONG,
        fe.ErrorType.TOO_MANY,
        fe.ErrorType.TYPE_INVALID,
    }
)
_IMMUTABLE_RULES: Final = frozenset({"self == oldSelf", "oldSelf == self"})
_ABSENT: Final = object()


class SchemaError(ValueError):
    """A schema the sandbox cannot use (for example a pattern that does not compile)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A supported `x-kubernetes-validations` rule (only immutability)."""

    rule: str
    message: str

    @property
    def detail(self) -> str:
        return self.message.strip() if self.message.strip() else f"failed rule: {self.rule.strip()}"


@dataclass(slots=True)
class Schema:
    """One node of a structural schema, compiled for validation."""

    type: str | None = None
    properties: dict[str, Schema] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    additional_properties: Schema | None = None
    items: Schema | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    pattern_re: re.Pattern[str] | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool = False
    min_properties: int | None = None
    max_properties: int | None = None
    format: str | None = None
    nullable: bool = False
    default: Any = _ABSENT
    preserve_unknown_fields: bool = False
    int_or_string: bool = False
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    has_rules: bool = False  # this node or a descendant declares x-kubernetes-validations
    has_list_types: bool = False  # this node or a descendant is a list-type map or set

    @classmethod
    def compile(cls, raw: dict[str, Any], path: str = "") -> Schema:
        """Compile an openAPIV3Schema; raise SchemaError for what a real server would refuse."""
        node = cls(
            type=raw.get("type"),
            required=tuple(raw.get("required") or ()),
            enum=tuple(raw["enum"]) if raw.get("enum") is not None else None,
            pattern=raw.get("pattern"),
            min_length=raw.get("minLength"),
            max_length=raw.get("maxLength"),
            minimum=raw.get("minimum"),
            maximum=raw.get("maximum"),
            exclusive_minimum=bool(raw.get("exclusiveMinimum", False)),
            exclusive_maximum=bool(raw.get("exclusiveMaximum", False)),
            multiple_of=raw.get("multipleOf"),
            min_items=raw.get("minItems"),
            max_items=raw.get("maxItems"),
            unique_items=bool(raw.get("uniqueItems", False)),
            min_properties=raw.get("minProperties"),
            max_properties=raw.get("maxProperties"),
            format=raw.get("format"),
            nullable=bool(raw.get("nullable", False)),
            default=copy.deepcopy(raw["default"]) if "default" in raw else _ABSENT,
            preserve_unknown_fields=bool(raw.get("x-kubernetes-preserve-unknown-fields", False)),
            int_or_string=bool(raw.get("x-kubernetes-int-or-string", False)),
            list_type=raw.get("x-kubernetes-list-type"),
            list_map_keys=tuple(raw.get("x-kubernetes-list-map-keys") or ()),
        )
        if node.pattern is not None:
            try:
                node.pattern_re = re.compile(go_regex(node.pattern), re.ASCII)
            except re.error as exc:
                raise SchemaError(f"{path or '<root>'}: pattern {node.pattern!r} does not compile: {exc}") from exc
        for name, sub in (raw.get("properties") or {}).items():
            node.properties[name] = cls.compile(sub, f"{path}.{name}")
        additional = raw.get("additionalProperties")
        if isinstance(additional, dict):
            node.additional_properties = cls.compile(additional, f"{path}.*")
        if isinstance(raw.get("items"), dict):
            node.items = cls.compile(raw["items"], f"{path}[*]")
        rules: list[Rule] = []
        declared = raw.get("x-kubernetes-validations") or []
        for item in declared:
            text = " ".join(str(item.get("rule", "")).split())
            if text in _IMMUTABLE_RULES:
                rules.append(Rule(text, str(item.get("message", ""))))
            else:
                log.warning(
                    "sandbox.schema.rule_ignored path=%s rule=%r (only self == oldSelf is supported)", path, text
                )
        node.rules = tuple(rules)
        children = [*node.properties.values(), node.additional_properties, node.items]
        node.has_rules = bool(declared) or any(child.has_rules for child in children if child is not None)
        node.has_list_types = node.list_type in ("map", "set") or any(
            child.has_list_types for child in children if child is not None
        )
        return node

    def child(self, key: str) -> Schema | None:
        """The schema of an object's field `key`, if the schema knows it."""
        found = self.properties.get(key)
        return found if found is not None else self.additional_properties


def go_regex(pattern: str) -> str:
    """A Go (RE2) pattern as a Python one: `$` and `\\z` end the text (Python's `$` also matches before a
    final newline); compiled with re.ASCII, as Go's \\d, \\w and \\s are ASCII-only."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            out.append("\\Z" if escaped == "z" and not in_class else char + escaped)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append("\\Z" if char == "$" and not in_class else char)
        index += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Pruning and defaulting


def prune(obj: dict[str, Any], schema: Schema) -> None:
    """Drop, in place, every field the schema does not know, and non-nullable `null`s; then apply defaults.

    The root's `metadata`, `apiVersion` and `kind` are left alone (metadata is decoded as ObjectMeta elsewhere).
    """
    for key in list(obj):
        value = obj[key]
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            continue  # ObjectMeta's own decoding (sandbox.objectmeta.normalise_meta) handles it
        _prune_field(obj, key, value, schema)
    _apply_defaults(obj, schema)


def _prune_field(container: dict[str, Any], key: str, value: Any, parent: Schema) -> None:
    sub = parent.child(key)
    if sub is None:
        if not parent.preserve_unknown_fields:
            del container[key]
        return
    if value is None:
        if not sub.nullable and sub.default is _ABSENT:
            del container[key]
        return
    _prune_value(value, sub)


def _prune_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        if not schema.properties and schema.additional_properties is None:
            return  # x-kubernetes-preserve-unknown-fields object, or an opaque one
        for key in list(value):
            _prune_field(value, key, value[key], schema)
        _apply_defaults(value, schema)
    elif isinstance(value, list) and schema.items is not None:
        for item in value:
            _prune_value(item, schema.items)


def _apply_defaults(obj: dict[str, Any], schema: Schema) -> None:
    for key, sub in schema.properties.items():
        if sub.default is not _ABSENT and obj.get(key) is None:
            obj[key] = copy.deepcopy(sub.default)


# ---------------------------------------------------------------------------------------------------------------
# Validation


_JSON_TYPES: Final = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "null")


def _type_matches(expected: str, actual: str, value: Any) -> bool:
    if expected == actual:
        return True
    if expected == "number" and actual == "integer":
        return True
    return expected == "integer" and actual == "number" and float(value).is_integer()


def _display(path: str) -> str:
    """kube-openapi's error name for a path: the path itself, `.` trimmed as apiextensions does."""
    return path.lstrip(".")


class _Validator:
    """One validation pass; collects errors in kube-openapi's order.

    `prefix` is the field path the validated value sits at (apiextensions validates a status update against the
    status schema alone, so its error details name `phase`, while the cause's field is `status.phase`).
    """

    def __init__(self, ratchet: bool, prefix: str = "") -> None:
        self.ratchet = ratchet
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def _field(self, name: str) -> str:
        if self.prefix and name:
            return f"{self.prefix}.{name}"
        return self.prefix or name

    def node(self, value: Any, schema: Schema, path: str, old: Any) -> None:
        if self.ratchet and old is not _ABSENT and value == old:
            return
        name = path  # paths are built without a leading dot
        if value is None:
            if schema.type and not schema.nullable and not schema.int_or_string:
                self._type_error(name, schema.type, "null")
            self._enum(value, schema, name)
            return
        actual = _json_type(value)
        if schema.int_or_string:
            if actual not in ("integer", "string"):
                self._type_error(name, "integer,string", actual)
        elif schema.type and not _type_matches(schema.type, actual, value):
            self._type_error(name, schema.type, actual)
        if isinstance(value, str):
            self._string(value, schema, name)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, name)
        elif isinstance(value, list):
            self._array(value, schema, path, old)
        self._enum(value, schema, name)
        if isinstance(value, dict):
            self._object(value, schema, path, old)

    def _type_error(self, name: str, expected: str, actual: str) -> None:
        detail = f"{name} in body must be of type {expected}: {fe.go_quote(actual)}"
        self.errors.append(fe.type_invalid(self._field(name), actual, detail))

    def _string(self, value: str, schema: Schema, name: str) -> None:
        field = self._field(name)
        if schema.max_length is not None and len(value) > schema.max_length:
            self.errors.append(fe.too_long(field, schema.max_length))
        if schema.min_length is not None and len(value) < schema.min_length:
            detail = f"{name} in body should be at least {schema.min_length} chars long"
            self.errors.append(fe.invalid(field, value, detail))
        if schema.pattern_re is not None and not schema.pattern_re.search(value):
            self.errors.append(fe.invalid(field, value, f"{name} in body should match '{schema.pattern}'"))
        if schema.format and not _format_valid(schema.format, value):
            detail = f"{name} in body must be of type {schema.format}: {fe.go_quote(value)}"
            self.errors.append(fe.type_invalid(field, value, detail))

    def _number(self, value: float, schema: Schema, name: str) -> None:
        field = self._field(name)
        if schema.multiple_of and (value / schema.multiple_of) % 1 != 0:
            detail = f"{name} in body should be a multiple of {fe.go_value(schema.multiple_of)}"
            self.errors.append(fe.invalid(field, value, detail))
        if schema.maximum is not None:
            bound = fe.go_value(schema.maximum)
            if schema.exclusive_maximum and value >= schema.maximum:
                self.errors.append(fe.invalid(field, value, f"{name} in body should be less than {bound}"))
            elif value > schema.maximum:
                self.errors.append(fe.invalid(field, value, f"{name} in body should be less than or equal to {bound}"))
        if schema.minimum is not None:
            bound = fe.go_value(schema.minimum)
            if schema.exclusive_minimum and value <= schema.minimum:
                self.errors.append(fe.invalid(field, value, f"{name} in body should be greater than {bound}"))
            elif value < schema.minimum:
                detail = f"{name} in body should be greater than or equal to {bound}"
                self.errors.append(fe.invalid(field, value, detail))

    def _array(self, value: list[Any], schema: Schema, path: str, old: Any) -> None:
        name = path
        field = self._field(name)
        if schema.items is not None:
            correlated = _correlate_list(value, old, schema)
            for index, item in enumerate(value):
                self.node(item, schema.items, f"{path}[{index}]", correlated[index])
        if schema.min_items is not None and len(value) < schema.min_items:
            detail = f"{name} in body should have at least {schema.min_items} items"
            self.errors.append(fe.invalid(field, len(value), detail))
        if schema.max_items is not None and len(value) > schema.max_items:
            self.errors.append(fe.too_many(field, len(value), schema.max_items))
        if schema.unique_items and len({_freeze(item) for item in value}) != len(value):
            self.errors.append(fe.invalid(field, "", f"{name} in body shouldn't contain duplicates"))

    def _enum(self, value: Any, schema: Schema, name: str) -> None:
        if schema.enum is not None and value not in schema.enum:
            supported = [item if isinstance(item, str) else fe.go_value(item) for item in schema.enum]
            self.errors.append(fe.not_supported(self._field(name), value, supported))

    def _object(self, value: dict[str, Any], schema: Schema, path: str, old: Any) -> None:
        count = len(value)
        name = path
        if schema.min_properties is not None and count < schema.min_properties:
            detail = f"{name} in body should have at least {schema.min_properties} properties"
            self.errors.append(fe.invalid(self._field(name), count, detail))
            return
        if schema.max_properties is not None and count > schema.max_properties:
            self.errors.append(fe.too_many(self._field(name), count, schema.max_properties))
            return
        old_map = old if isinstance(old, dict) else {}
        if schema.additional_properties is not None:
            for key, item in value.items():
                if key not in schema.properties:
                    child = f"{path}.{key}" if path else key
                    self.node(item, schema.additional_properties, child, old_map.get(key, _ABSENT))
        for key, sub in schema.properties.items():
            if key in value:
                child = f"{path}.{key}" if path else key
                self.node(value[key], sub, child, old_map.get(key, _ABSENT))
        for key in schema.required:
            if key not in value:
                self.errors.append(fe.required(self._field(_display(f"{path}.{key}"))))


def _correlate_list(value: list[Any], old: Any, schema: Schema) -> list[Any]:
    """The old item each new item corresponds to (ratcheting correlates only list-type maps, by key)."""
    if not isinstance(old, list) or schema.list_type != "map" or not schema.list_map_keys:
        return [_ABSENT] * len(value)
    by_key = {_map_key(item, schema.list_map_keys): item for item in old if isinstance(item, dict)}
    return [
        by_key.get(_map_key(item, schema.list_map_keys), _ABSENT) if isinstance(item, dict) else _ABSENT
        for item in value
    ]


def _map_key(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(_freeze(item.get(key)) for key in keys)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


_DATE_TIME: Final = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
_UUID: Final = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


def _is_date(text: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_date_time(text: str) -> bool:
    """strfmt's `IsDateTime`: RFC 3339 date, `T`, time with optional fraction, `Z` or a numeric offset."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _DATE_TIME.match(parts[1])
    if match is None:
        return False
    return match.group(1) <= "23" and match.group(2) <= "59" and match.group(3) <= "59"


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_FORMATS: Final = {
    "date-time": is_date_time,
    "datetime": is_date_time,
    "date": _is_date,
    "uuid": lambda text: bool(_UUID.match(text)),
    "byte": _is_base64,
}


def _format_valid(name: str, value: str) -> bool:
    check = _FORMATS.get(name)
    return True if check is None else check(value)


# ---------------------------------------------------------------------------------------------------------------
# Lists with x-kubernetes-list-type


def list_errors(value: Any, schema: Schema, path: str = "") -> list[FieldError]:
    """`ValidateListSetsAndMaps`: duplicate keys in `map` lists and duplicate items in `set` lists."""
    errors: list[FieldError] = []
    for list_path, items, node in _lists(value, schema, path):
        seen: set[Any] = set()
        for index, item in enumerate(items):
            if node.list_type == "map" and isinstance(item, dict):
                key = _map_key(item, node.list_map_keys)
                shown: Any = {name: item.get(name) for name in node.list_map_keys if name in item}
            elif node.list_type == "set":
                key, shown = _freeze(item), item
            else:
                continue
            if key in seen:
                errors.append(fe.duplicate(f"{list_path}[{index}]", shown))
            seen.add(key)
    return errors


def _lists(value: Any, schema: Schema, path: str) -> Iterator[tuple[str, list[Any], Schema]]:
    if not schema.has_list_types:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            sub = schema.child(key)
            if sub is not None:
                yield from _lists(item, sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        if schema.list_type in ("map", "set"):
            yield path, value, schema
        if schema.items is not None:
            for index, item in enumerate(value):
                yield from _lists(item, schema.items, f"{path}[{index}]")


# ---------------------------------------------------------------------------------------------------------------
# Transition rules


def rule_errors(new: Any, old: Any, schema: Schema, path: str = "") -> list[FieldError]:
    """Evaluate the supported transition rules (`self == oldSelf`) where the old object has a value."""
    errors: list[FieldError] = []
    _rules(new, old, schema, path, errors)
    return errors


def _rules(new: Any, old: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if not schema.has_rules or new is None or old is None or old is _ABSENT:
        return
    for rule in schema.rules:
        if new != old:
            shown: Any = fe.OMIT if schema.type in ("object", "array") else new
            errors.append(fe.invalid(path or fe.NIL_PATH, shown, rule.detail))
    if isinstance(new, dict) and isinstance(old, dict):
        for key, item in new.items():
            sub = schema.child(key)
            if sub is not None and key in old:
                _rules(item, old[key], sub, f"{path}.{key}" if path else key, errors)
    elif isinstance(new, list) and isinstance(old, list) and schema.items is not None:
        for index, (item, previous) in enumerate(zip(new, _correlate_list(new, old, schema), strict=True)):
            _rules(item, previous, schema.items, f"{path}[{index}]", errors)


# ---------------------------------------------------------------------------------------------------------------
# The whole check of one custom resource


@dataclass(frozen=True, slots=True)
class CustomResourceSchema:
    """The schema of one served version of a CRD: what happens to an object on create, update and status update."""

    root: Schema

    @classmethod
    def from_openapi(cls, raw: dict[str, Any] | None) -> CustomResourceSchema:
        if raw is None:
            return cls(Schema(type="object", preserve_unknown_fields=True))
        return cls(Schema.compile(raw))

    def prune(self, obj: dict[str, Any]) -> None:
        prune(obj, self.root)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        """Schema, list-type and rule errors of `obj` (created when `old` is None, else updated)."""
        checker = _Validator(ratchet=old is not None)
        body = {key: value for key, value in obj.items() if key != "metadata"}
        old_body: Any = {key: value for key, value in old.items() if key != "metadata"} if old is not None else _ABSENT
        checker.node(body, self.root, "", old_body)
        errors = checker.errors
        errors.extend(self._list_errors(obj, old))
        return errors + self._rule_errors(errors, obj, old)

    def validate_status(self, obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        """A status update: the status against its schema (ratcheted), lists, and the rules of the whole object."""
        status_schema = self.root.properties.get("status")
        errors: list[FieldError] = []
        if status_schema is not None and "status" in obj:
            checker = _Validator(ratchet=True, prefix="status")
            checker.node(obj["status"], status_schema, "", old.get("status", _ABSENT))
            errors = checker.errors
        errors.extend(self._list_errors(obj, old))
        return errors + self._rule_errors(errors, obj, old)

    def _list_errors(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is not None and list_errors(old, self.root):
            return []
        return list_errors(obj, self.root)

    def _rule_errors(
        self, errors: list[FieldError], obj: dict[str, Any], old: dict[str, Any] | None
    ) -> list[FieldError]:
        if not self.root.has_rules:
            return []
        if any(error.type in _BLOCKING for error in errors):
            return [fe.invalid(fe.NIL_PATH, None, UNCHECKED_RULES_MESSAGE)]
        if old is None:
            return []
        return rule_errors(obj, old, self.root)

    def admit(self, obj: dict[str, Any]) -> list[FieldError]:
        """What a create does to a copy of `obj`: prune it, then validate it. The errors a real server reports."""
        candidate = copy.deepcopy(obj)
        self.prune(candidate)
        return self.validate(candidate)
