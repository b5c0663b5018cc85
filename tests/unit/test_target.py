import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.target import Target, canonical_target, parse_target, target_label_value

LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
dns_label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")
kinds = st.from_regex(r"\A[A-Z][A-Za-z0-9]{0,15}\Z")


@pytest.mark.parametrize(
    ("kind", "name", "namespace", "expected"),
    [
        ("Deployment", "web", "prod", "prod/deployment/web"),
        ("deployment", "web", "prod", "prod/deployment/web"),
        ("Node", "worker-1", None, "node/worker-1"),
        ("Node", "worker-1", "", "node/worker-1"),
        ("StatefulSet", "db.v2", "data", "data/statefulset/db.v2"),
    ],
)
def test_canonical_target_lowercases_kind_and_drops_empty_namespace(kind, name, namespace, expected):
    assert canonical_target(kind, name, namespace) == expected


@pytest.mark.parametrize(("kind", "name"), [("", "x"), ("Pod", ""), ("a/b", "x"), ("Pod", "x/y")])
def test_canonical_target_rejects_empty_or_slashed_parts(kind, name):
    with pytest.raises(ValueError, match="target"):
        canonical_target(kind, name, "ns")


@given(kind=kinds, name=dns_label, namespace=st.one_of(st.none(), dns_label))
def test_parse_target_inverts_canonical_target(kind, name, namespace):
    parsed = parse_target(canonical_target(kind, name, namespace))
    assert parsed == Target(kind.lower(), name, namespace)


@pytest.mark.parametrize("bad", ["web", "a/b/c/d", "ns//web", "/deployment/web", "ns/Deployment/web", ""])
def test_parse_target_rejects_non_canonical_strings(bad):
    with pytest.raises(ValueError, match="invalid target"):
        parse_target(bad)


@given(
    kind=kinds,
    name=st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,200}[a-z0-9])?\Z"),
    namespace=st.one_of(st.none(), dns_label),
)
def test_label_value_is_always_a_valid_label_value(kind, name, namespace):
    import re

    value = target_label_value(canonical_target(kind, name, namespace))
    assert len(value) <= 63
    assert re.match(LABEL_VALUE, value)


def test_label_value_keeps_short_targets_readable_and_long_ones_distinct():
    assert target_label_value("prod/deployment/web") == "prod_deployment_web"
    long_a = canonical_target("Deployment", "a" * 100 + "x", "prod")
    long_b = canonical_target("Deployment", "a" * 100 + "y", "prod")
    assert target_label_value(long_a) != target_label_value(long_b)
