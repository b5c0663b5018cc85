"""Issue 17's class of defect, made hard to write again: arbitrary schema-valid objects never break the orchestrator.

RemediationRequests and WorkflowExecutions are generated from the CRDs' own schemas (manifests/crds, generated from
the models), biased towards their limits (longest names and values, huge durations, cross-namespace and
cluster-scoped targets, namesakes of WFEs left behind) and mixed with routable values so the routing rows are
reached, not just validation. For every batch: each request gets a status with a phase from its first reconcile,
no reconcile raises, and every status the orchestrator writes is accepted by the API server's schema validation
(no 422, no fallback to a minimal status).
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.testing import SandboxHandle
from shared.runtime.client import ApiError, KubeClient
from tests import factories
from tests.crdschema import RAW, valid_value
from tests.integration.helpers import create_namespace, eventually
from tests.integration.orchestrator.conftest import RR, WFE, StartOrchestrator

pytestmark = pytest.mark.sandbox_only  # reads the sandbox's audit log

_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
SHORT_NAMES = st.from_regex(rf"\A{_LABEL}\Z")
LONG_NAMES = st.integers(200, 253).flatmap(lambda n: st.just("a" * (n - 5)) | st.just("r" * n)).map(lambda s: s[:253])
NAMES = st.one_of(SHORT_NAMES, LONG_NAMES, st.sampled_from(["same", "alert-a", "alert-z"]))
TEXT = string.ascii_letters + string.digits + "-_./: "


def schema_value(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    return valid_value(node, at_limits=True)


RR_SPEC = schema_value(RAW["RemediationRequest"]["properties"]["spec"])
WFE_SPEC = schema_value(RAW["WorkflowExecution"]["properties"]["spec"])
WFE_STATUS = schema_value(RAW["WorkflowExecution"]["properties"]["status"])

# Routable values, so the routing rows are reached and not only validation: a few targets (one cluster-scoped, so
# executions of another namespace are on it too), a few fingerprints, runnable bundles.
TARGETS = [("Deployment", "web", "default"), ("Node", "worker-1", None)]
ROUTABLE = st.fixed_dictionaries(
    {
        "signalFingerprint": st.sampled_from([factories.fingerprint(s) for s in ("one", "two")]),
        "targetResource": st.sampled_from(
            [{"kind": k, "name": n, **({"namespace": ns} if ns else {})} for k, n, ns in TARGETS]
        ),
        "timeouts": st.fixed_dictionaries(
            {},
            optional={
                "executing": st.sampled_from(["9999999999999h", "99999999h", "2562047h47m16s", "0s", "1h"])
                | schema_value(RAW["RemediationRequest"]["properties"]["spec"]["properties"]["timeouts"]).map(
                    lambda t: t.get("executing", "1h")
                )
            },
        ),
        "workflowRef": st.sampled_from(
            [
                {"workflowId": w, "executionBundle": f"registry.example.com/workflows/{w}:v1"}
                for w in ("restart-pods", "scale-up")
            ]
        ),
    }
)


@st.composite
def request_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(RR_SPEC)
    if draw(st.integers(0, 3)):  # mostly routable, sometimes as the schema alone allows
        spec.update(draw(ROUTABLE))
    return spec


@st.composite
def execution_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(WFE_SPEC)
    if draw(st.integers(0, 3)):
        kind, name, namespace = draw(st.sampled_from(TARGETS))
        spec["targetResource"] = f"{namespace}/{kind.lower()}/{name}" if namespace else f"{kind.lower()}/{name}"
    return spec


BATCHES = st.fixed_dictionaries(
    {
        "executions": st.lists(
            st.tuples(NAMES, st.booleans(), execution_specs(), st.none() | WFE_STATUS),
            max_size=3,
            unique_by=lambda e: (e[0], e[1]),
        ),
        "requests": st.lists(st.tuples(NAMES, request_specs()), min_size=1, max_size=4, unique_by=lambda r: r[0]),
    }
)


_running: dict[int, Any] = {}


async def _create(kube: KubeClient, resource: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return await kube.create(resource, body)
    except ApiError as error:
        if error.status == 409:  # a namesake already there: that is a case too
            return None
        raise


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=BATCHES)
async def test_every_schema_valid_request_gets_a_valid_status_from_its_first_reconcile(
    batch: dict[str, Any], kube: KubeClient, sandbox: SandboxHandle, start_orchestrator: StartOrchestrator
):
    orchestrator = _running.get(id(start_orchestrator))
    if orchestrator is None:  # one orchestrator for every example of this run, watching every namespace
        orchestrator = _running[id(start_orchestrator)] = await start_orchestrator(watched_namespaces=[])
    namespace, other = await create_namespace(kube, "prop"), await create_namespace(kube, "prop-other")

    for name, elsewhere, spec, status in batch["executions"]:
        body = {**factories.workflow_execution(name, other if elsewhere else namespace), "spec": spec}
        created = await _create(kube, WFE, body)
        if created is not None and status:
            await kube.patch_status(WFE, created["metadata"]["namespace"], name, status)
    for name, spec in batch["requests"]:
        await kube.create(RR, {**factories.remediation_request(name, namespace), "spec": spec})

    async def all_have_a_phase() -> bool:
        items = (await kube.list(RR, namespace))["items"]
        return all((o.get("status") or {}).get("phase") for o in items)

    await eventually(all_have_a_phase, timeout=20, what="every request to get a status with a phase")
    assert orchestrator.metric("reconcile_total", result="error") == 0, "a reconcile raised"
    writes = [
        r
        for r in sandbox.admin.audit()
        if (r.resource, r.subresource, r.namespace) == ("remediationrequests", "status", namespace)
    ]
    assert all(r.code < 400 or r.code == 409 for r in writes), [(r.name, r.code) for r in writes if r.code >= 400]
    first_writes: dict[str, int] = {}
    for record in writes:
        first_writes.setdefault(record.name, record.code)
    assert set(first_writes) == {name for name, _ in batch["requests"]}
    for obj in (await kube.list(RR, namespace))["items"]:
        status = obj["status"]
        assert status.get("failureReason") != "StatusRefused", status.get("message")
        if status["phase"] in ("Completed", "Failed", "TimedOut", "Skipped"):
            conditions = {c["type"] for c in status.get("conditions") or []}
            assert conditions >= {"Routed", "Blocked", "Succeeded"}, (obj["metadata"]["name"], status)
