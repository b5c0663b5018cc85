"""Label and field selectors: grammar and meaning, as the labels and fields packages define them."""

import pytest

from sandbox.selectors import FieldSelector, LabelSelector, SelectorError

LABELS = {"app": "web", "tier": "front", "replicas": "3"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),  # != matches objects without the label
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("replicas>2", True),
        ("replicas<3", False),
        ("app>1", False),  # not an integer label: never greater
        ("  app = web ,  tier  in ( front )", True),
        ("example.com/team", False),
    ],
)
def test_a_label_selector_matches_as_kubernetes_defines_it(selector, matches):
    assert LabelSelector.parse(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    "selector",
    ["app in web", "app in ()", "=web", "app=web,", "app = (x)", "app>x", "Bad Key=x", "app=in valid"],
)
def test_a_malformed_label_selector_is_an_error(selector):
    with pytest.raises(SelectorError):
        LabelSelector.parse(selector)


def test_an_empty_value_is_allowed():
    assert LabelSelector.parse("app=").matches({"app": ""})


@pytest.mark.parametrize(
    ("selector", "fields", "matches"),
    [
        ("metadata.name=a", {"metadata.name": "a"}, True),
        ("metadata.name==a", {"metadata.name": "a"}, True),
        ("metadata.name!=a", {"metadata.name": "a"}, False),
        ("spec.x=", {}, True),  # a missing field has the value ""
        ("metadata.name=a,metadata.namespace=n", {"metadata.name": "a", "metadata.namespace": "n"}, True),
        (r"spec.x=a\,b", {"spec.x": "a,b"}, True),
        (r"spec.x=a\=b", {"spec.x": "a=b"}, True),
        (r"spec.x=a\\b", {"spec.x": "a\\b"}, True),
    ],
)
def test_a_field_selector_compares_values_with_equality(selector, fields, matches):
    assert FieldSelector.parse(selector).matches(fields) is matches


@pytest.mark.parametrize("selector", ["metadata.name", r"spec.x=a\b", "spec.x=a=b"])
def test_a_malformed_field_selector_is_an_error(selector):
    with pytest.raises(SelectorError):
        FieldSelector.parse(selector)


def test_a_field_selector_reports_the_exact_value_it_pins():
    selector = FieldSelector.parse("metadata.name=a,spec.x!=b")
    assert selector.exact("metadata.name") == "a"
    assert selector.exact("spec.x") is None
    assert selector.fields == {"metadata.name", "spec.x"}
