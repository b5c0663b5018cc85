"""Field errors render as apimachinery's field.Error renders them."""

import pytest

from sandbox import fielderrors as fe


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (fe.required("spec.a"), "spec.a: Required value"),
        (
            fe.required("metadata.name", "name or generateName is required"),
            "metadata.name: Required value: name or generateName is required",
        ),
        (fe.invalid("spec.a", "x", "must match"), 'spec.a: Invalid value: "x": must match'),
        (fe.invalid("spec.a", -1, "too small"), "spec.a: Invalid value: -1: too small"),
        (fe.invalid("spec.a", True, "no"), "spec.a: Invalid value: true: no"),
        (fe.invalid("spec.a", 1.5, "no"), "spec.a: Invalid value: 1.5: no"),
        (fe.invalid("spec", fe.OMIT, "spec is immutable"), "spec: Invalid value: spec is immutable"),
        (fe.invalid("<nil>", None, "unchecked"), "<nil>: Invalid value: null: unchecked"),
        (fe.not_supported("spec.t", "x", ["a", "b"]), 'spec.t: Unsupported value: "x": supported values: "a", "b"'),
        (fe.too_long("spec.n", 253), "spec.n: Too long: may not be more than 253 bytes"),
        (fe.too_long("spec.n", 1), "spec.n: Too long: may not be more than 1 byte"),
        (fe.too_many("spec.l", 17, 16), "spec.l: Too many: 17: must have at most 16 items"),
        (fe.duplicate("l[1]", {"type": "A"}), 'l[1]: Duplicate value: {"type":"A"}'),
        (
            fe.forbidden("metadata.namespace", "not allowed on this type"),
            "metadata.namespace: Forbidden: not allowed on this type",
        ),
        (fe.invalid("a", 'q"uote\n', "x"), 'a: Invalid value: "q\\"uote\\n": x'),
    ],
)
def test_an_error_reads_as_the_real_server_writes_it(error, text):
    assert str(error) == text


def test_a_single_error_aggregates_to_itself_and_several_to_a_bracketed_list():
    one = fe.required("a")
    two = fe.required("b")
    assert fe.aggregate([one]) == "a: Required value"
    assert fe.aggregate([one, two, one]) == "[a: Required value, b: Required value]"


def test_a_cause_carries_reason_message_and_field():
    assert fe.required("spec.a").as_cause() == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.a",
    }
