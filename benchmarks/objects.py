"""Realistic objects for benchmarks: an RR as it looks once the orchestrator has blocked it (about 1.3 KB of JSON)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from shared.runtime.informer import EventHandler, Informer
from shared.runtime.store import KubeDict

NAMESPACES = 20


def remediation_request(i: int, *, targets: int = 3000, fingerprints: int = 5000) -> dict[str, Any]:
    namespace = f"team-{i % NAMESPACES}"
    target = f"app-{i % targets}"
    return {
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "RemediationRequest",
        "metadata": {
            "name": f"rr-{i:06d}",
            "namespace": namespace,
            "uid": f"{i:08d}-1111-4222-8333-444455556666",
            "resourceVersion": str(100000 + i),
            "generation": 1,
            "creationTimestamp": "2026-11-22T10:00:00Z",
            "labels": {"app.kubernetes.io/managed-by": "alertmanager"},
        },
        "spec": {
            "signalFingerprint": hashlib.sha256(f"signal-{i % fingerprints}".encode()).hexdigest(),
            "signalName": "HighMemoryUsage",
            "severity": "critical",
            "targetResource": {"kind": "Deployment", "name": target, "namespace": namespace},
            "workflowRef": {"workflowId": "restart-pods", "executionBundle": "registry.example.com/wf/restart-pods:v1"},
            "parameters": {"REPLICAS": "3", "REASON": "memory"},
        },
        "status": {
            "phase": "Blocked",
            "reason": "ResourceBusy",
            "blockReason": "ResourceBusy",
            "blockMessage": f"another workflow ({namespace}/rr-{i - 1:06d}) is running on "
            f"{namespace}/deployment/{target}",
            "blockingWorkflowExecution": f"rr-{i - 1:06d}",
            "startTime": "2026-11-22T10:00:01.123Z",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Routed",
                    "status": "False",
                    "reason": "Blocked",
                    "message": "another workflow is running",
                    "lastTransitionTime": "2026-11-22T10:00:01.123Z",
                    "observedGeneration": 1,
                },
                {
                    "type": "Blocked",
                    "status": "True",
                    "reason": "ResourceBusy",
                    "message": "another workflow is running",
                    "lastTransitionTime": "2026-11-22T10:00:01.123Z",
                    "observedGeneration": 1,
                },
            ],
        },
    }


def signal_when_stored(informer: Informer, count: int) -> asyncio.Event:
    """An event set once the informer's store holds `count` objects."""
    done = asyncio.Event()

    def added(_: KubeDict) -> None:
        if len(informer.store) >= count:
            done.set()

    informer.add_event_handler(EventHandler(on_add=added))
    return done
