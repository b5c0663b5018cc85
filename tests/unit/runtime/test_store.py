import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.runtime.store import Indexer, decode, object_key, split_key


def obj(name, namespace="ns", labels=None):
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}


def by_team(o):
    team = o["metadata"]["labels"].get("team")
    return [team] if team else []


def by_all_labels(o):
    return [f"{k}={v}" for k, v in o["metadata"]["labels"].items()]


@pytest.fixture
def indexer():
    return Indexer({"team": by_team, "labels": by_all_labels})


def test_keys_are_namespace_slash_name_or_name_for_cluster_scope():
    assert object_key(obj("a")) == "ns/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("node-1") == (None, "node-1")


def test_objects_are_found_by_index_value(indexer):
    indexer.upsert("ns/a", obj("a", labels={"team": "red"}))
    indexer.upsert("ns/b", obj("b", labels={"team": "red"}))
    indexer.upsert("ns/c", obj("c", labels={"team": "blue"}))
    assert indexer.index_keys("team", "red") == {"ns/a", "ns/b"}
    assert [o["metadata"]["name"] for o in indexer.by_index("team", "blue")] == ["c"]
    assert indexer.by_index("team", "green") == []


def test_an_object_may_have_many_or_no_index_values(indexer):
    indexer.upsert("ns/a", obj("a", labels={"x": "1", "y": "2"}))
    indexer.upsert("ns/b", obj("b"))
    assert indexer.index_keys("labels", "x=1") == {"ns/a"}
    assert indexer.index_keys("labels", "y=2") == {"ns/a"}
    assert indexer.index_values("team") == []


def test_update_moves_the_key_between_values_and_removes_empty_sets(indexer):
    indexer.upsert("ns/a", obj("a", labels={"team": "red"}))
    indexer.upsert("ns/a", obj("a", labels={"team": "blue"}))
    assert indexer.index_keys("team", "red") == frozenset()
    assert "red" not in indexer.index_values("team")
    assert indexer.index_keys("team", "blue") == {"ns/a"}


def test_delete_returns_the_last_known_object_and_clears_indexes(indexer):
    indexer.upsert("ns/a", obj("a", labels={"team": "red"}))
    last = indexer.delete("ns/a")
    assert decode(last)["metadata"]["name"] == "a"
    assert indexer.index_values("team") == []
    assert indexer.delete("ns/a") is None


def test_every_read_returns_a_fresh_copy_so_readers_cannot_corrupt_the_cache(indexer):
    indexer.upsert("ns/a", obj("a", labels={"team": "red"}))
    indexer.get("ns/a")["metadata"]["labels"]["team"] = "changed"
    indexer.by_index("team", "red")[0]["metadata"]["name"] = "changed"
    assert indexer.get("ns/a") == obj("a", labels={"team": "red"})


def test_resource_version_is_read_without_decoding(indexer):
    indexer.upsert("ns/a", {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "42", "labels": {}}})
    assert indexer.resource_version("ns/a") == "42"
    assert indexer.resource_version("ns/b") is None


def test_unknown_index_names_the_known_ones(indexer):
    with pytest.raises(KeyError, match="team"):
        indexer.by_index("nope", "x")


def test_duplicate_values_from_an_index_function_are_filed_once():
    indexer = Indexer({"dup": lambda o: ["v", "v"]})
    indexer.upsert("ns/a", obj("a"))
    indexer.delete("ns/a")
    assert indexer.index_values("dup") == []


operations = st.lists(
    st.tuples(
        st.sampled_from(["upsert", "delete"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.dictionaries(st.sampled_from(["team", "x"]), st.sampled_from(["1", "2", "3"]), max_size=2),
    ),
    max_size=60,
)


@given(operations)
def test_indexes_always_equal_a_recomputation_from_the_items(ops):
    indexer = Indexer({"team": by_team, "labels": by_all_labels})
    for op, name, labels in ops:
        if op == "upsert":
            indexer.upsert(f"ns/{name}", obj(name, labels=labels))
        else:
            indexer.delete(f"ns/{name}")
    for index, func in (("team", by_team), ("labels", by_all_labels)):
        expected: dict[str, set[str]] = {}
        for key in indexer:
            for value in func(indexer.get(key)):
                expected.setdefault(value, set()).add(key)
        assert {v: set(indexer.index_keys(index, v)) for v in indexer.index_values(index)} == expected


def labels_of(o):
    return tuple(sorted(o["metadata"]["labels"].items()))


def test_a_projection_is_computed_once_per_stored_version(indexer):
    calls = []

    def project(o):
        calls.append(o["metadata"]["name"])
        return labels_of(o)

    indexer.upsert("ns/a", obj("a", labels={"team": "red", "v": "1"}))
    indexer.upsert("ns/b", obj("b", labels={"team": "red"}))
    first = sorted(indexer.by_index_projected("team", "red", project))
    assert sorted(indexer.by_index_projected("team", "red", project)) == first
    assert sorted(calls) == ["a", "b"]  # the second read decoded nothing
    indexer.upsert("ns/a", obj("a", labels={"team": "red", "v": "2"}))  # same key, new content: projected afresh
    assert (("team", "red"), ("v", "2")) in indexer.by_index_projected("team", "red", project)
    assert sorted(calls) == ["a", "a", "b"]


@given(operations, st.lists(st.sampled_from(["1", "2", "3"]), max_size=10))
def test_projected_reads_always_equal_projecting_the_decoded_objects(ops, reads):
    """Interleaved writes and projected reads: a projection is never stale, whatever was cached before."""
    indexer = Indexer({"team": by_team})
    for position, (op, name, labels) in enumerate(ops):
        if op == "upsert":
            indexer.upsert(f"ns/{name}", obj(name, labels=labels))
        else:
            indexer.delete(f"ns/{name}")
        if reads:
            team = reads[position % len(reads)]
            expected = sorted(labels_of(o) for o in indexer.by_index("team", team))
            assert sorted(indexer.by_index_projected("team", team, labels_of)) == expected
