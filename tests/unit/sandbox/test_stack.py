"""sandbox.stack reads a process's /metrics as the processes write them (prefixed leader gauge included)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest, start_http_server

from orchestrator.metrics import PREFIX
from sandbox.stack import Component, free_port, metric_samples
from shared.runtime.metrics import RuntimeMetrics


@pytest.fixture
def served() -> Iterator[tuple[RuntimeMetrics, Component]]:
    """Runtime metrics with the orchestrator's prefix on a real /metrics endpoint, and a Component pointing at it."""
    metrics = RuntimeMetrics(PREFIX)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    try:
        yield metrics, Component("orchestrator", [], {}, Path("unused.log"), metrics_port=port)
    finally:
        server.shutdown()
        thread.join(5)


def test_a_leading_process_is_recognised_by_its_prefixed_gauge(served):
    metrics, component = served
    metrics.leader.labels("kubernaut-orchestrator").set(1)
    assert component.is_leader() is True


def test_a_standby_is_not_leading(served):
    metrics, component = served
    metrics.leader.labels("kubernaut-orchestrator").set(0)
    assert component.is_leader() is False


def test_samples_are_keyed_by_name_and_labels():
    metrics = RuntimeMetrics(PREFIX)
    metrics.leader.labels("kubernaut-orchestrator").set(1)
    samples = metric_samples(generate_latest(metrics.registry).decode())
    assert samples[(f"{PREFIX}leader_election_is_leader", frozenset({("lease", "kubernaut-orchestrator")}))] == 1
