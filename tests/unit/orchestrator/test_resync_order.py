"""A new leader works through every request; the resync puts expired and expiring blocks first (SPEC 4.4)."""

from orchestrator.view import resync_order
from shared.runtime.store import Indexer


def request(name: str, created: str, **status: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created, "resourceVersion": "1"},
        "spec": {},
        "status": status,
    }


def test_time_based_blocks_come_first_by_blocked_until_then_live_requests_by_age_then_ended_ones():
    store = Indexer()
    for obj in (
        request("done", "2026-01-01T00:00:00Z", phase="Completed"),
        request("new", "2026-01-01T00:00:05Z"),
        request("busy", "2026-01-01T00:00:01Z", phase="Blocked", blockReason="ResourceBusy"),
        request("later", "2026-01-01T00:00:00Z", phase="Blocked", blockedUntil="2026-01-01T00:10:00Z"),
        request("sooner", "2026-01-01T00:00:09Z", phase="Blocked", blockedUntil="2026-01-01T00:05:00Z"),
        request("running", "2026-01-01T00:00:03Z", phase="Executing"),
        request("failed", "2025-12-31T00:00:00Z", phase="Failed"),
    ):
        store.upsert(f"ns/{obj['metadata']['name']}", obj)
    assert resync_order(store) == [
        "ns/sooner",
        "ns/later",
        "ns/busy",
        "ns/running",
        "ns/new",
        "ns/failed",
        "ns/done",
    ]
