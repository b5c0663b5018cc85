"""sandbox.stack: the system's processes as children, probed the way the chaos suite and the demo probe them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.stack import SYSTEM_NAMESPACE, Stack
from sandbox.testing import running_sandbox
from tests.integration.helpers import eventually

pytestmark = pytest.mark.slow


async def test_the_replica_holding_the_lease_reports_itself_leader_and_the_standby_does_not(tmp_path: Path):
    with running_sandbox(namespaces=(SYSTEM_NAMESPACE,)) as sandbox:
        stack = Stack(sandbox.kubeconfig_for, tmp_path)
        settings = {"leader_election": "true", "watched_namespaces": "default"}
        leader = stack.orchestrator("orchestrator-a", **settings).start()
        try:
            leader.wait_ready()
            await eventually(leader.is_leader, timeout=15, what="the orchestrator to lead")
            standby = stack.orchestrator("orchestrator-b", **settings).start()
            standby.wait_ready()
            assert leader.is_leader() and not standby.is_leader()
        finally:
            assert set(stack.stop().values()) == {0}
