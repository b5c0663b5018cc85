"""The shape of the RBAC objects: who runs as which ServiceAccount, what a process must never hold, bindings.

Whether each process holds exactly the calls it makes is checked against the calls recorded in the end-to-end run
(tests/e2e/test_rbac.py), not against a list written here.
"""

import subprocess

import pytest
import yaml

from tests.deploy.manifests import MANIFESTS, of_kind
from tests.deploy.rbac import (
    ALL_NAMESPACES,
    USER_ROLES,
    Grant,
    Permission,
    RbacModelError,
    allows,
    grants,
    permissions_by_user,
    processes_by_user,
    service_account_user,
)

SYSTEM = "kubernaut-system"
EXECUTION = "kubernaut-workflows"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_each_process_runs_as_its_own_service_account(objects):
    assert processes_by_user(objects) == {
        service_account_user(SYSTEM, "kubernaut-orchestrator"): {"orchestrator"},
        service_account_user(SYSTEM, "kubernaut-executor"): {"executor"},
    }


@pytest.mark.parametrize("overlay", ["two-container"])
def test_both_processes_share_one_service_account_in_the_two_container_shape(objects):
    user = service_account_user(SYSTEM, "kubernaut-controlplane")
    assert processes_by_user(objects) == {user: {"orchestrator", "executor"}}
    union = permissions_by_user(objects)[user]
    assert grants(objects) == {Grant(p, *perm) for p in ("orchestrator", "executor") for perm in union}


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_the_orchestrator_cannot_touch_pipeline_runs(objects):
    assert not [g for g in grants(objects) if g.process == "orchestrator" and g.group == "tekton.dev"]


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_the_executor_cannot_write_remediation_requests(objects):
    for verb in WRITE_VERBS:
        for subresource in ("", "status"):
            assert not allows(
                grants(objects),
                process="executor",
                group="kubernaut.ai",
                resource="remediationrequests",
                subresource=subresource,
                verb=verb,
                namespace="default",
            )


def test_a_workflow_cannot_touch_the_control_plane_or_grant_itself_more(objects):
    runner = permissions_by_user(objects)[service_account_user(EXECUTION, "kubernaut-workflow-runner")]
    assert runner, "the example workflow policy grants something"
    forbidden_groups = {"kubernaut.ai", "tekton.dev", "rbac.authorization.k8s.io", "coordination.k8s.io"}
    assert not [p for p in runner if p.group in forbidden_groups or p.resource in ("secrets", "serviceaccounts")]


def test_every_binding_names_a_service_account_the_overlay_creates(objects):
    accounts = {(sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in of_kind(objects, "ServiceAccount")}
    for binding in [*of_kind(objects, "RoleBinding"), *of_kind(objects, "ClusterRoleBinding")]:
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert (subject["namespace"], subject["name"]) in accounts, binding["metadata"]["name"]


def test_every_role_is_bound(objects):
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in [*of_kind(objects, "RoleBinding"), *of_kind(objects, "ClusterRoleBinding")]
    }
    for role in [*of_kind(objects, "Role"), *of_kind(objects, "ClusterRole")]:
        if role["kind"] == "ClusterRole" and role["metadata"]["name"] in USER_ROLES:
            assert (role["kind"], role["metadata"]["name"]) not in bound, "the users' roles ship unbound"
            continue
        assert (role["kind"], role["metadata"]["name"]) in bound


# -- the module's own rules -----------------------------------------------------------------------------------------
def role(kind: str, rules: list[dict], namespace: str | None = None, **extra) -> dict:
    metadata = {"name": "r", **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules, **extra}


def binding(kind: str, role_kind: str, namespace: str | None = None) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "b", **({"namespace": namespace} if namespace else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
    }


READ_PODS = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]}]
USER = service_account_user("ns", "sa")


def test_a_cluster_role_bound_in_a_namespace_grants_in_that_namespace_only():
    granted = permissions_by_user([role("ClusterRole", READ_PODS), binding("RoleBinding", "ClusterRole", "team")])
    assert granted == {USER: {Permission("", "pods", "", "get", "team"), Permission("", "pods", "log", "get", "team")}}


@pytest.mark.parametrize(
    ("namespace", "request_namespace", "allowed"),
    [
        (ALL_NAMESPACES, "team", True),
        (ALL_NAMESPACES, "", True),
        ("team", "team", True),
        ("team", "other", False),
        ("team", "", False),
    ],
)
def test_allows_follows_rbac_namespace_rules(namespace, request_namespace, allowed):
    granted = {Grant("p", "", "pods", "", "list", namespace)}
    request = {"group": "", "resource": "pods", "subresource": "", "verb": "list", "namespace": request_namespace}
    assert allows(granted, **request) is allowed
    assert allows(granted, process="other", **request) is False


@pytest.mark.parametrize(
    "rules",
    [
        [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}],
        [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}],
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}],
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"], "resourceNames": ["one"]}],
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"], "resourceNames": ["one"]}],
        [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
    ],
)
def test_what_the_module_does_not_model_is_refused(rules):
    with pytest.raises(RbacModelError):
        permissions_by_user([role("ClusterRole", rules), binding("ClusterRoleBinding", "ClusterRole")])


def test_resource_names_grant_those_objects_only():
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["one", "two"]}]
    granted = permissions_by_user([role("Role", rules, "team"), binding("RoleBinding", "Role", "team")])[USER]
    assert granted == {Permission("", "pods", "", "get", "team", name) for name in ("one", "two")}
    request = {"group": "", "resource": "pods", "subresource": "", "verb": "get", "namespace": "team"}
    assert allows(granted, name="one", **request) and not allows(granted, name="three", **request)


LEASES = ("coordination.k8s.io", "leases")
OWN_LEASE = {"orchestrator": "kubernaut-orchestrator", "executor": "kubernaut-executor"}


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_each_process_may_only_get_and_update_its_own_lease(objects):
    """Issue 18: a shared Lease Role let each process take or break the other's election. No create either: it
    cannot be limited by name, so the Leases ship with the manifests."""
    leases = {(g.process, g.verb, g.name) for g in grants(objects) if (g.group, g.resource) == LEASES}
    assert leases == {(process, verb, name) for process, name in OWN_LEASE.items() for verb in ("get", "update")}
    assert all(g.namespace == SYSTEM for g in grants(objects) if (g.group, g.resource) == LEASES)
    shipped = {lease["metadata"]["name"] for lease in of_kind(objects, "Lease")}
    assert shipped == set(OWN_LEASE.values())
    assert all(
        lease["metadata"]["namespace"] == SYSTEM and not lease.get("spec") for lease in of_kind(objects, "Lease")
    )


@pytest.mark.parametrize("overlay", ["kind", "production", "two-container"])
def test_the_workflow_runner_is_bound_per_namespace_by_default(objects):
    runner = permissions_by_user(objects)[service_account_user(EXECUTION, "kubernaut-workflow-runner")]
    assert {p.namespace for p in runner} == {"default"}, "no ClusterRoleBinding unless opted in"
    assert {(p.group, p.resource, p.verb) for p in runner} == {
        ("apps", "deployments", verb) for verb in ("get", "list", "watch", "patch")
    }, "what the example workflow (kubectl rollout restart/status) needs"


def test_the_cluster_wide_runner_is_an_explicit_opt_in():
    built = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS / "opt-in" / "cluster-wide-runner")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    objects = [obj for obj in yaml.safe_load_all(built) if obj]
    runner = permissions_by_user(objects)[service_account_user(EXECUTION, "kubernaut-workflow-runner")]
    assert ALL_NAMESPACES in {p.namespace for p in runner}
    forbidden_groups = {"kubernaut.ai", "tekton.dev", "rbac.authorization.k8s.io", "coordination.k8s.io"}
    assert not [p for p in runner if p.group in forbidden_groups or p.resource in ("secrets", "serviceaccounts")]


def test_a_binding_to_a_missing_role_is_refused():
    with pytest.raises(RbacModelError, match="no"):
        permissions_by_user([binding("ClusterRoleBinding", "ClusterRole")])
