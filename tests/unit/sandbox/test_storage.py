"""The storage: one revision counter, immutable versions, a bounded history and snapshots rebuilt from it."""

import pytest

from sandbox.storage import History, RevisionExpiredError, Storage


def obj(name, namespace="ns", **extra):
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", **extra}}


def test_every_write_takes_the_next_revision_and_stamps_it():
    storage = Storage()
    first = storage.create("r", "ns", "a", obj("a"))
    second = storage.update("r", "ns", "a", obj("a", labels={"x": "y"}))
    final = storage.delete("r", "ns", "a")
    assert (first.rv, second.rv, final.rv) == (1, 2, 3)
    assert final.metadata["resourceVersion"] == "3"
    assert final.metadata["labels"] == {"x": "y"}
    assert [change.type for change in storage.history.since(0)] == ["ADDED", "MODIFIED", "DELETED"]


def test_items_are_ordered_by_namespace_then_name():
    storage = Storage()
    for namespace, name in (("b", "x"), ("a", "z"), ("a", "y"), ("ab", "w")):
        storage.create("r", namespace, name, obj(name, namespace))
    assert [(o.namespace, o.name) for o in storage.items("r")] == [("a", "y"), ("a", "z"), ("ab", "w"), ("b", "x")]
    assert [o.name for o in storage.items("r", "a")] == ["y", "z"]


def test_a_snapshot_rebuilds_the_state_at_an_older_revision():
    storage = Storage()
    storage.create("r", "ns", "a", obj("a"))
    storage.create("r", "ns", "b", obj("b"))
    at = storage.revision
    storage.update("r", "ns", "a", obj("a", labels={"v": "2"}))
    storage.delete("r", "ns", "b")
    storage.create("r", "ns", "c", obj("c"))
    snapshot = storage.snapshot("r", None, at)
    assert [(o.name, o.rv) for o in snapshot] == [("a", 1), ("b", 2)]


def test_history_keeps_its_capacity_and_raises_below_its_floor():
    history_storage = Storage(history_capacity=3)
    for index in range(5):
        history_storage.create("r", "ns", f"o{index}", obj(f"o{index}"))
    history = history_storage.history
    assert len(history) == 3
    assert history.floor == 2
    assert [change.rv for change in history.since(2)] == [3, 4, 5]
    with pytest.raises(RevisionExpiredError):
        history.since(1)


def test_compaction_moves_the_floor():
    storage = Storage()
    for index in range(4):
        storage.create("r", "ns", f"o{index}", obj(f"o{index}"))
    assert storage.history.compact(3) == 3
    assert storage.history.floor == 3
    assert [change.rv for change in storage.history.since(3)] == [4]
    with pytest.raises(RevisionExpiredError):
        storage.snapshot("r", None, 2)


def test_dependents_are_indexed_by_owner_uid():
    storage = Storage()
    storage.create("r", "ns", "owner", obj("owner"))
    storage.create("r", "ns", "dep", obj("dep", ownerReferences=[{"uid": "uid-owner", "name": "owner"}]))
    assert [o.name for _, o in storage.dependents("uid-owner")] == ["dep"]
    storage.update("r", "ns", "dep", obj("dep"))
    assert storage.dependents("uid-owner") == []


def test_an_empty_history_has_no_oldest_change():
    assert History().oldest is None
