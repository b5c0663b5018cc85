"""sandbox.stack: a process's /metrics read as the processes write them (leader gauge included); free ports."""

import socket
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


def test_free_ports_differ_stay_below_the_ephemeral_range_and_can_be_bound():
    """No outgoing connection can take such a port before the process binds it, and two asked for at once differ."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(10000 <= port < low for port in ports)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", ports[-1]))
        listener.listen()
