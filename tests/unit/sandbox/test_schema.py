"""Structural schemas: pruning, kube-openapi's validation order and words, ratcheting, the immutability rule."""

import pytest

from sandbox.schema import UNCHECKED_RULES_MESSAGE, CustomResourceSchema, Schema, SchemaError, is_date_time

SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["name"],
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "spec is immutable"}],
            "properties": {
                "name": {"type": "string", "maxLength": 5, "minLength": 1, "pattern": "^[a-z]+$"},
                "count": {"type": "integer", "minimum": 0, "maximum": 10},
                "ratio": {"type": "number"},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "when": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "labels": {
                    "type": "object",
                    "maxProperties": 2,
                    "additionalProperties": {"type": "string", "maxLength": 3},
                },
                "opaque": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "maybe": {"type": "string", "nullable": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Up", "Down"]},
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["key"],
                    "items": {"type": "object", "properties": {"key": {"type": "string"}, "v": {"type": "integer"}}},
                },
            },
        },
    },
}
SCHEMA_OF = CustomResourceSchema.from_openapi(SCHEMA)


UNCHECKED = f"<nil>: Invalid value: null: {UNCHECKED_RULES_MESSAGE}"


def errors(spec=None, status=None, old=None):
    """The errors of an object, without the note that rules were skipped (see the dedicated test)."""
    obj = {
        "apiVersion": "g/v1",
        "kind": "K",
        "metadata": {"name": "x"},
        "spec": spec if spec is not None else {"name": "ok"},
    }
    if status is not None:
        obj["status"] = status
    return [str(error) for error in SCHEMA_OF.validate(obj, old) if str(error) != UNCHECKED]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"name": "ok"}, []),
        ({"name": "toolong"}, ["spec.name: Too long: may not be more than 5 bytes"]),
        (
            {"name": ""},
            [
                'spec.name: Invalid value: "": spec.name in body should be at least 1 chars long',
                "spec.name: Invalid value: \"\": spec.name in body should match '^[a-z]+$'",
            ],
        ),
        ({"name": "AB"}, ["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"]),
        ({"name": 3}, ['spec.name: Invalid value: "integer": spec.name in body must be of type string: "integer"']),
        (
            {"name": "ok", "count": -1},
            ["spec.count: Invalid value: -1: spec.count in body should be greater than or equal to 0"],
        ),
        (
            {"name": "ok", "count": 11},
            ["spec.count: Invalid value: 11: spec.count in body should be less than or equal to 10"],
        ),
        ({"name": "ok", "count": 2.0}, []),  # an integral number is an integer
        (
            {"name": "ok", "count": 2.5},
            ['spec.count: Invalid value: "number": spec.count in body must be of type integer: "number"'],
        ),
        ({"name": "ok", "ratio": 1}, []),  # an integer is a number
        ({"name": "ok", "kind": "c"}, ['spec.kind: Unsupported value: "c": supported values: "a", "b"']),
        ({"name": "ok", "when": "2026-01-02T03:04:05Z"}, []),
        (
            {"name": "ok", "when": "tomorrow"},
            ['spec.when: Invalid value: "tomorrow": spec.when in body must be of type date-time: "tomorrow"'],
        ),
        ({"name": "ok", "tags": ["a", "b", "c"]}, ["spec.tags: Too many: 3: must have at most 2 items"]),
        (
            {"name": "ok", "tags": ["a", 1]},
            ['spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"'],
        ),
        (
            {"name": "ok", "labels": {"a": "1", "b": "2", "c": "3"}},
            ["spec.labels: Too many: 3: must have at most 2 items"],
        ),
        ({"name": "ok", "labels": {"a": "long"}}, ["spec.labels.a: Too long: may not be more than 3 bytes"]),
        ({"name": "ok", "maybe": None}, []),
        ({}, ["spec.name: Required value"]),
    ],
)
def test_a_spec_is_checked_in_kube_openapi_order_and_words(spec, expected):
    assert errors(spec) == expected


def test_status_enum_and_list_map_keys_are_checked():
    status = {"phase": "Sideways", "items": [{"key": "a"}, {"key": "a", "v": 1}]}
    assert errors(status=status) == [
        'status.phase: Unsupported value: "Sideways": supported values: "Up", "Down"',
        'status.items[1]: Duplicate value: {"key":"a"}',
    ]


@pytest.mark.parametrize(
    ("spec", "unchecked"),
    [
        ({}, True),  # Required
        ({"name": "toolong"}, True),  # TooLong
        ({"name": 1}, True),  # TypeInvalid
        ({"name": "ok", "kind": "c"}, True),  # NotSupported
        ({"name": "ok", "tags": ["a", "b", "c"]}, True),  # TooMany
        ({"name": "AB"}, False),  # a pattern error does not block the rules
    ],
)
def test_blocking_errors_keep_the_rules_from_running_and_say_so(spec, unchecked):
    obj = {"apiVersion": "g/v1", "kind": "K", "metadata": {}, "spec": spec}
    assert (UNCHECKED in [str(error) for error in SCHEMA_OF.validate(obj)]) is unchecked


def test_a_changed_spec_breaks_the_immutability_rule_on_update_only():
    old = {"apiVersion": "g/v1", "kind": "K", "metadata": {}, "spec": {"name": "ok"}}
    assert errors({"name": "ok"}, old=old) == []
    assert errors({"name": "other"}, old=old) == ["spec: Invalid value: spec is immutable"]
    assert errors({"name": "other"}) == []


def test_an_update_does_not_revalidate_unchanged_invalid_parts():
    old = {"apiVersion": "g/v1", "kind": "K", "metadata": {}, "spec": {"name": "INVALID"}, "status": {"phase": "Nope"}}
    obj = {**old, "metadata": {"labels": {"a": "b"}}}
    assert SCHEMA_OF.validate(obj, old) == []


def test_a_status_update_validates_the_status_with_paths_relative_to_it():
    old = {"apiVersion": "g/v1", "kind": "K", "metadata": {}, "spec": {"name": "ok"}}
    new = {**old, "status": {"phase": "Nope"}}
    found = SCHEMA_OF.validate_status(new, old)
    assert [(e.field, e.body()) for e in found if str(e) != UNCHECKED] == [
        ("status.phase", 'Unsupported value: "Nope": supported values: "Up", "Down"'),
    ]


def test_pruning_drops_unknown_fields_and_non_nullable_nulls_but_keeps_preserved_ones():
    obj = {
        "apiVersion": "g/v1",
        "kind": "K",
        "metadata": {"name": "x"},
        "spec": {"name": "ok", "unknown": 1, "count": None, "maybe": None, "opaque": {"anything": {"goes": [1]}}},
        "extra": True,
    }
    SCHEMA_OF.prune(obj)
    assert obj == {
        "apiVersion": "g/v1",
        "kind": "K",
        "metadata": {"name": "x"},
        "spec": {"name": "ok", "maybe": None, "opaque": {"anything": {"goes": [1]}}},
    }


def test_a_schema_without_structure_preserves_everything():
    schema = CustomResourceSchema.from_openapi({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    obj = {"apiVersion": "g/v1", "kind": "K", "metadata": {}, "spec": {"a": [1, {"b": None}]}}
    schema.prune(obj)
    assert obj["spec"] == {"a": [1, {"b": None}]}
    assert schema.validate(obj) == []


def test_defaults_are_applied_to_missing_fields():
    schema = CustomResourceSchema.from_openapi(
        {
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer", "default": 3}}}},
        }
    )
    obj = {"metadata": {}, "spec": {}}
    schema.prune(obj)
    assert obj["spec"] == {"n": 3}


def test_a_pattern_that_does_not_compile_is_refused():
    with pytest.raises(SchemaError):
        Schema.compile({"type": "string", "pattern": "("})


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-01-02T03:04:05Z", True),
        ("2026-01-02T03:04:05.123456Z", True),
        ("2026-01-02t03:04:05+01:00", True),
        ("2026-01-02T03:04:05", False),
        ("2026-02-30T03:04:05Z", False),
        ("2026-01-02T24:00:00Z", False),
        ("2026-01-02 03:04:05Z", False),
        ("", False),
    ],
)
def test_date_time_follows_strfmt(text, valid):
    assert is_date_time(text) is valid
