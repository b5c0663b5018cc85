"""The short chaos run (CI): every fault alone and several at once, under load, then SPEC 7's invariants.

The whole system runs as processes: the sandbox, two orchestrators and two executors with leader election, the
Tekton simulator. `make chaos` runs the same for ten minutes; KUBERNAUT_CHAOS_SEED picks another schedule here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.faults import ALL_FAULTS
from tests.chaos.run import ChaosConfig, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

# The leader kills wait out a 15 s Lease each, so they start the mixed round instead of playing alone.
SOLO = tuple(kind for kind in ALL_FAULTS if kind not in ("kill-orchestrator-leader", "kill-executor-leader"))
SHORT = ChaosConfig(
    seed=int(os.environ.get("KUBERNAUT_CHAOS_SEED", "1")),
    duration=60.0,
    requests=150,
    solo=SOLO,
    bursts=2,
    burst_size=8,
)


async def test_spec_7_invariants_hold_under_every_fault_alone_and_mixed(tmp_path: Path):
    report = await run_chaos(SHORT, tmp_path / "chaos", say=print)
    summary = report.summary()
    print(summary)
    assert {record.kind for record in report.faults} >= set(ALL_FAULTS), "every fault kind was injected"
    assert not [record for record in report.faults if record.error], summary
    assert sum(report.phases.values()) == SHORT.requests
    assert report.passed, summary
