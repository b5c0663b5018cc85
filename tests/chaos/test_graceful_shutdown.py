"""SIGTERM of the leading orchestrator and the leading executor mid-load: in-flight reconciles finish, the process
exits 0 within 10 s and releases its Lease, and the standby leads within one lease duration (15 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.invariants import LEASE_DURATION, SHUTDOWN_BOUND
from tests.chaos.run import ChaosConfig, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

FAULTS = ("terminate-orchestrator-leader", "terminate-executor-leader")


async def test_a_terminated_leader_finishes_its_work_releases_the_lease_and_the_standby_takes_over(tmp_path: Path):
    config = ChaosConfig(seed=11, duration=15.0, requests=40, faults=FAULTS, bursts=1, burst_size=6)
    report = await run_chaos(config, tmp_path / "shutdown", say=print)
    summary = report.summary()
    print(summary)
    shutdowns = {shutdown.kind: shutdown for shutdown in report.shutdowns}
    assert set(shutdowns) == {"orchestrator", "executor"}, summary
    for shutdown in shutdowns.values():
        assert shutdown.exit_code == 0, summary
        assert shutdown.exit_seconds <= SHUTDOWN_BOUND, summary
        assert shutdown.takeover_seconds is not None and shutdown.takeover_seconds <= LEASE_DURATION, summary
        assert '"leader.released"' in shutdown.log, shutdown.log
    assert report.passed, summary
