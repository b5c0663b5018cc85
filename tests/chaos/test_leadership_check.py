"""The chaos suite's two-leader check judges leadership from the processes' logs (fast; no processes run)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from tests.chaos.invariants import Evidence, check_one_leader_at_a_time, leading_intervals


def line(event: str, at: float) -> str:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps({"event": event, "timestamp": stamp, "level": "info"}).decode()


def log(*events: tuple[str, float]) -> str:
    return "\n".join(["not json", *(line(f"leader.{event}", at) for event, at in events)])


def evidence(logs: dict[str, str], deaths: dict[str, list[float]] | None = None, ended_at: float = 1000.0):
    fields = dict.fromkeys(Evidence.__dataclass_fields__)
    fields.update(logs=logs, deaths=deaths or {}, ended_at=ended_at)
    return Evidence(**fields)  # type: ignore[arg-type]


def test_a_kill_ends_leadership_and_a_restart_may_lead_again():
    text = log(("started_leading", 10.0), ("started_leading", 30.0), ("stopped_leading", 40.0))
    assert leading_intervals(text, [20.0], 1000.0) == [(10.0, 20.0), (30.0, 40.0)]
    assert leading_intervals(log(("started_leading", 5.0)), [], 99.0) == [(5.0, 99.0)]


def test_a_handover_passes_and_an_overlap_fails():
    handover = {
        "orchestrator-a": log(("started_leading", 10.0), ("stopped_leading", 20.0)),
        "orchestrator-b": log(("started_leading", 25.0)),
        "executor-a": log(("started_leading", 12.0)),
    }
    assert check_one_leader_at_a_time(evidence(handover)).passed
    overlap = {**handover, "orchestrator-b": log(("started_leading", 19.5))}
    check = check_one_leader_at_a_time(evidence(overlap))
    assert not check.passed and "0.500 s of two leaders" in check.violations[0]
    killed = {**handover, "orchestrator-a": log(("started_leading", 10.0))}
    assert not check_one_leader_at_a_time(evidence(killed)).passed, "no death recorded: a still leads"
    assert check_one_leader_at_a_time(evidence(killed, {"orchestrator-a": [24.0]})).passed
