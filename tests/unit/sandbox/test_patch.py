"""Patches: the RFC 7386 and RFC 6902 examples, and the strategic merge subset of built-in kinds."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.patch import OBJECT_META_RULES, PatchError, json_patch, merge_patch, strategic_merge_patch

META = OBJECT_META_RULES

# RFC 7386 appendix A
MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), MERGE_CASES)
def test_merge_patch_follows_rfc_7386(target, patch, result):
    assert merge_patch(target, patch) == result


def test_merge_patch_leaves_its_target_untouched():
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


DOCUMENT = {"foo": "bar", "list": ["a", "b"], "nested": {"x": 1}}


@pytest.mark.parametrize(
    ("operations", "result"),
    [
        ([{"op": "add", "path": "/baz", "value": "qux"}], {**DOCUMENT, "baz": "qux"}),
        ([{"op": "add", "path": "/list/1", "value": "z"}], {**DOCUMENT, "list": ["a", "z", "b"]}),
        ([{"op": "add", "path": "/list/-", "value": "z"}], {**DOCUMENT, "list": ["a", "b", "z"]}),
        ([{"op": "remove", "path": "/foo"}], {"list": ["a", "b"], "nested": {"x": 1}}),
        ([{"op": "replace", "path": "/nested/x", "value": 2}], {**DOCUMENT, "nested": {"x": 2}}),
        ([{"op": "move", "from": "/foo", "path": "/moved"}], {"moved": "bar", "list": ["a", "b"], "nested": {"x": 1}}),
        ([{"op": "copy", "from": "/nested", "path": "/copy"}], {**DOCUMENT, "copy": {"x": 1}}),
        ([{"op": "test", "path": "/foo", "value": "bar"}], DOCUMENT),
        ([{"op": "add", "path": "/a~1b", "value": 1}], {**DOCUMENT, "a/b": 1}),
    ],
)
def test_json_patch_follows_rfc_6902(operations, result):
    assert json_patch(_copy(DOCUMENT), operations) == result


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/foo", "value": "other"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/missing/deeper", "value": 1}],
        [{"op": "add", "path": "/list/5", "value": 1}],
    ],
)
def test_a_json_patch_that_does_not_apply_is_an_apply_error(operations):
    with pytest.raises(PatchError) as raised:
        json_patch(_copy(DOCUMENT), operations)
    assert not raised.value.decode


@pytest.mark.parametrize("operations", [{"op": "add"}, [{"path": "/a"}], [{"op": "jump", "path": "/a"}]])
def test_a_malformed_json_patch_is_a_decode_error(operations):
    with pytest.raises(PatchError) as raised:
        json_patch(_copy(DOCUMENT), operations)
    assert raised.value.decode


def test_strategic_merge_unions_finalizers_and_merges_owner_references_by_uid():
    target = {"metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "x"}]}}
    patch = {
        "metadata": {
            "finalizers": ["b", "a"],
            "ownerReferences": [{"uid": "1", "name": "y"}, {"uid": "2", "name": "z"}],
        }
    }
    result = strategic_merge_patch(target, patch, OBJECT_META_RULES)
    assert result["metadata"]["finalizers"] == ["b", "a"]
    assert result["metadata"]["ownerReferences"] == [{"uid": "1", "name": "y"}, {"uid": "2", "name": "z"}]


# (live list, patch list, what kube-apiserver stores): worked through apimachinery's strategicpatch (mergeSlice,
# normalizeElementOrder, mergeSortedSlice); the first is the contract test checked against v1.36.2.
FINALIZER_ORDERS = [
    (["a"], ["b"], ["b", "a"]),
    (["a"], ["b", "a"], ["b", "a"]),
    (["a", "b", "c"], ["d"], ["d", "a", "b", "c"]),
    (["a", "b", "c"], ["c", "d"], ["a", "b", "c", "d"]),
    (["a", "b", "c"], ["d", "b"], ["d", "a", "b", "c"]),
    (["a", "b"], ["b", "a"], ["b", "a"]),
    (["a", "a"], ["b"], ["b", "a"]),
    (["a", "b"], ["a", "a"], ["a", "b"]),
    (None, ["a", "a"], ["a", "a"]),  # a list the object lacks is taken as given
]


@pytest.mark.parametrize(("live", "patch", "stored"), FINALIZER_ORDERS)
def test_strategic_merge_orders_a_merged_primitive_list_as_kube_apiserver_does(live, patch, stored):
    target = {"metadata": {} if live is None else {"finalizers": live}}
    result = strategic_merge_patch(target, {"metadata": {"finalizers": patch}}, OBJECT_META_RULES)
    assert result["metadata"]["finalizers"] == stored


def test_strategic_merge_orders_a_keyed_list_the_same_way():
    target = {"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "3"}, {"uid": "2", "name": "x"}]}}
    result = strategic_merge_patch(target, patch, OBJECT_META_RULES)
    assert result["metadata"]["ownerReferences"] == [{"uid": "3"}, {"uid": "1"}, {"uid": "2", "name": "x"}]


def test_set_element_order_decides_the_order_of_a_merged_list():
    target = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "a", "c"], "finalizers": ["c"]}}
    assert strategic_merge_patch(target, patch, OBJECT_META_RULES)["metadata"]["finalizers"] == ["b", "a", "c"]


finalizer_names = st.lists(st.sampled_from("abcdefg"), max_size=6)


@given(live=finalizer_names, patch=finalizer_names)
def test_a_merged_primitive_list_holds_each_item_once_patch_items_in_patch_order_live_items_in_live_order(live, patch):
    result = strategic_merge_patch({"metadata": {"finalizers": live}}, {"metadata": {"finalizers": patch}}, META)
    stored = result["metadata"]["finalizers"]
    assert sorted(stored) == sorted(set(live) | set(patch))
    assert [x for x in stored if x in patch] == list(dict.fromkeys(patch))
    assert [x for x in stored if x not in patch] == [x for x in dict.fromkeys(live) if x not in patch]
    if not set(patch) & set(live):  # only new items: all of them before the live ones
        assert stored == [*dict.fromkeys(patch), *dict.fromkeys(live)]


def _copy(value):
    import copy

    return copy.deepcopy(value)
