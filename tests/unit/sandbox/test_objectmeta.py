"""ObjectMeta: decoding (unknown, null and empty fields go), validation wording, generated names."""

import re

import pytest

from sandbox.objectmeta import dns_label_problems, generate_name, normalise_meta, validate_meta, validate_meta_update
from sandbox.selectors import label_value_problems


def test_metadata_decodes_like_object_meta():
    meta = {
        "name": "x",
        "labels": {},
        "annotations": None,
        "finalizers": [],
        "uid": "",
        "generation": 0,
        "deletionGracePeriodSeconds": 0,
        "bogus": 1,
        "ownerReferences": [{"uid": "u"}],
    }
    normalise_meta(meta)
    assert meta == {"name": "x", "deletionGracePeriodSeconds": 0, "ownerReferences": [{"uid": "u"}]}


def errors(meta, namespaced=True):
    return [
        str(error)
        for error in validate_meta(
            meta, namespaced=namespaced, name_check=lambda n, p: [] if n.islower() else ["lower case only"]
        )
    ]


@pytest.mark.parametrize(
    ("meta", "namespaced", "expected"),
    [
        ({"name": "a", "namespace": "n"}, True, []),
        ({"namespace": "n"}, True, ["metadata.name: Required value: name or generateName is required"]),
        ({"name": "A", "namespace": "n"}, True, ['metadata.name: Invalid value: "A": lower case only']),
        ({"name": "a"}, True, ["metadata.namespace: Required value"]),
        ({"name": "a", "namespace": "n"}, False, ["metadata.namespace: Forbidden: not allowed on this type"]),
        (
            {"name": "a", "namespace": "n", "labels": {"k": "-bad"}},
            True,
            [f'metadata.labels: Invalid value: "-bad": {label_value_problems("-bad")[0]}'],
        ),
        (
            {"name": "a", "namespace": "n", "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o"}]},
            True,
            ['metadata.ownerReferences.uid: Invalid value: "": uid must not be empty'],
        ),
        (
            {"name": "a", "namespace": "n", "finalizers": ["orphan", "foregroundDeletion"]},
            True,
            [
                'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: '
                "finalizer orphan and foregroundDeletion cannot be both set"
            ],
        ),
    ],
)
def test_object_meta_is_validated_with_the_real_wording(meta, namespaced, expected):
    assert errors(meta, namespaced) == expected


def test_no_finalizer_may_be_added_once_deletion_started():
    old = {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["x/a"]}
    new = {**old, "finalizers": ["x/a", "x/b"]}
    assert [str(e) for e in validate_meta_update(new, old)] == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"x/b"}'
    ]


def test_generated_names_cut_the_prefix_and_add_five_characters():
    name = generate_name("x" * 70)
    assert re.fullmatch(r"x{58}[bcdfghjklmnpqrstvwxz2456789]{5}", name)


def test_a_namespace_name_is_a_dns_label():
    assert dns_label_problems("ok-name") == []
    assert dns_label_problems("not.a.label")
    assert dns_label_problems("x" * 64)[0] == "must be no more than 63 characters"
