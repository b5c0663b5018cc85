"""RBAC grants each process exactly the API calls it was seen to make: the sandbox's audit log of the end-to-end
run (conftest.py: the full scenario, leader election on, three routine API failures recovered from) is the source
of truth, compared both ways with the Roles and ClusterRoles of every built overlay.

A call the code makes but a correct run cannot, is listed in NOT_RECORDED with the reason; the list must stay
minimal, so a listed call that does show up in the recording fails the test too.
"""

from __future__ import annotations

import pytest

from sandbox.stack import EXECUTION_NAMESPACE, SYSTEM_NAMESPACE, USERS
from tests.deploy.manifests import OVERLAYS, built
from tests.deploy.rbac import (
    ALL_NAMESPACES,
    Permission,
    allows,
    permissions_by_user,
    permissions_needed,
    processes_by_user,
    service_account_user,
)
from tests.e2e.conftest import Run

pytestmark = pytest.mark.slow

PROCESSES = ("orchestrator", "executor")
# The Event recorder patches an Event (count, lastTimestamp) only when the same Event repeats on the same object
# within ten minutes: its guard against a hot loop, which a correct run never is.
AGGREGATED_EVENT = Permission("", "events", "", "patch", ALL_NAMESPACES)
NOT_RECORDED = {"orchestrator": {AGGREGATED_EVENT}, "executor": {AGGREGATED_EVENT}}
# Granted by name (resourceNames): each process's own Lease.
BY_NAME = [("coordination.k8s.io", "leases")]
OWN_LEASE = {"orchestrator": "kubernaut-orchestrator", "executor": "kubernaut-executor"}


def recorded_needs(run: Run, process: str) -> set[Permission]:
    return permissions_needed(run.audit[process], [SYSTEM_NAMESPACE, EXECUTION_NAMESPACE], BY_NAME)


def needed(run: Run, process: str) -> set[Permission]:
    return recorded_needs(run, process) | NOT_RECORDED[process]


def test_the_run_is_recorded_under_the_service_accounts_the_manifests_give_each_process(scenario_run: Run):
    users = processes_by_user(built("kind"))
    assert users == {USERS["orchestrator"]: {"orchestrator"}, USERS["executor"]: {"executor"}}
    assert USERS["orchestrator"] == service_account_user(SYSTEM_NAMESPACE, "kubernaut-orchestrator")
    for process in PROCESSES:
        assert len(scenario_run.audit[process]) > 50, f"{process} made hardly any call: was it recorded?"


def test_the_hand_listed_calls_are_only_those_the_run_cannot_make(scenario_run: Run):
    for process in PROCESSES:
        recorded = recorded_needs(scenario_run, process)
        assert not recorded & NOT_RECORDED[process], f"{process}: recorded now, drop it from NOT_RECORDED"


def test_the_recovery_and_leader_election_calls_were_recorded(scenario_run: Run):
    """The calls the injected failures and leader election exist to record (else they would be hand-listed)."""
    expected = {
        "orchestrator": {
            Permission("kubernaut.ai", "remediationrequests", "", "get", ALL_NAMESPACES),
            Permission("kubernaut.ai", "workflowexecutions", "", "get", ALL_NAMESPACES),
            Permission("kubernaut.ai", "notificationrequests", "", "get", ALL_NAMESPACES),
        },
        "executor": {
            Permission("kubernaut.ai", "workflowexecutions", "", "get", ALL_NAMESPACES),
            Permission("tekton.dev", "pipelineruns", "", "get", EXECUTION_NAMESPACE),
            Permission("tekton.dev", "pipelineruns", "", "delete", EXECUTION_NAMESPACE),
            # The cancel at an execution's deadline (conftest.py's never-started run after the scenario).
            Permission("tekton.dev", "pipelineruns", "", "patch", EXECUTION_NAMESPACE),
        },
    }
    for process in PROCESSES:
        leases = {
            Permission("coordination.k8s.io", "leases", "", verb, SYSTEM_NAMESPACE, OWN_LEASE[process])
            for verb in ("get", "update")
        }
        assert expected[process] | leases <= needed(scenario_run, process), process
        # Each touched its own Lease only, and never created one (the manifests ship both).
        touched = {p for p in needed(scenario_run, process) if (p.group, p.resource) == BY_NAME[0]}
        assert touched == leases, process


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_recorded_call_is_allowed(scenario_run: Run, overlay: str):
    objects = built(overlay)
    granted = permissions_by_user(objects)
    for user, processes in processes_by_user(objects).items():
        for process in processes:
            refused = {
                (r.verb, r.api_group, r.resource, r.subresource, r.namespace)
                for r in scenario_run.audit[process]
                if not allows(
                    granted.get(user, set()),
                    group=r.api_group,
                    resource=r.resource,
                    subresource=r.subresource,
                    verb=r.verb,
                    namespace=r.namespace,
                    name=r.name,
                )
            }
            assert not refused, f"{overlay}: {process} as {user} would be refused {sorted(refused)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_account_holds_exactly_what_its_processes_need(scenario_run: Run, overlay: str):
    objects = built(overlay)
    granted = permissions_by_user(objects)
    for user, processes in processes_by_user(objects).items():
        want = set().union(*(needed(scenario_run, process) for process in processes))
        have = granted.get(user, set())
        assert not want - have, f"{overlay}: {user} lacks {sorted(want - have)}"
        assert not have - want, f"{overlay}: {user} holds unused {sorted(have - want)}"
