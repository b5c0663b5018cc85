"""What each process may do, read from the RBAC objects of a built overlay: one `Grant` per permitted API call shape.

A process is found through the Deployments: a container whose command is `kubernaut-orchestrator` runs the
orchestrator, and it holds every permission of its pod's ServiceAccount. So in the two-container shape, where one
ServiceAccount serves both containers, each process holds the union.

For comparing with an audit log (user, verb, apiGroup, resource, subresource, namespace per request):
`permissions_by_user()` gives each ServiceAccount's permissions under its API user name
(`system:serviceaccount:<namespace>:<name>`), `processes_by_user()` which processes run as it, and `allows()`
answers whether a recorded request is covered, with RBAC's rules for namespaces: a grant in `ALL_NAMESPACES`
(a ClusterRole bound by a ClusterRoleBinding) covers every namespace and cluster-wide requests (list/watch across
namespaces are recorded with an empty namespace); a grant in one namespace covers requests in that namespace only.
`permissions_needed()` turns recorded requests into the permissions they need, to compare both ways.

A rule with `resourceNames` grants its verbs on those names only (`Permission.name`; "" is any name); since
Kubernetes cannot limit `create` (nor list, watch, deletecollection) by name, such a rule is refused here as the
API server would make it useless. `permissions_needed(..., by_name=...)` keeps the name of the recorded requests
on the resources granted by name, so they compare both ways too.

The parser refuses what it does not model (wildcards, nonResourceURLs, aggregated ClusterRoles, Group subjects)
instead of guessing, so such a change to the manifests is a deliberate change here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

KubeObject = dict[str, Any]

ALL_NAMESPACES = "*"
PROCESSES = {"kubernaut-orchestrator": "orchestrator", "kubernaut-executor": "executor"}  # command -> process
RBAC_GROUP = "rbac.authorization.k8s.io"
USER_ROLES = ("kubernaut-viewer", "kubernaut-operator")
"""ClusterRoles for people (`kubectl kubernaut`): shipped unbound, for each cluster to bind to its own users."""


class Permission(NamedTuple):
    """One verb on one resource (and subresource) in one namespace, or in every namespace (`ALL_NAMESPACES`)."""

    group: str  # "" for the core group
    resource: str  # plural, e.g. "remediationrequests"
    subresource: str  # "" for the resource itself, e.g. "status"
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    namespace: str  # ALL_NAMESPACES, or the namespace of the RoleBinding
    name: str = ""  # one object's name (a rule's resourceNames), or "" for any


class Grant(NamedTuple):
    """A `Permission` held by a process (`orchestrator` or `executor`)."""

    process: str
    group: str
    resource: str
    subresource: str
    verb: str
    namespace: str
    name: str = ""


class RbacModelError(ValueError):
    """The RBAC objects use something this module does not model, or refer to something missing."""


def service_account_user(namespace: str, name: str) -> str:
    """The API server's user name of a ServiceAccount, as audit logs record it."""
    return f"system:serviceaccount:{namespace}:{name}"


def permissions_by_user(objects: Iterable[KubeObject]) -> dict[str, set[Permission]]:
    """Every subject of a binding (ServiceAccount or User) and the permissions its bindings give it."""
    objects = list(objects)
    roles = {_role_key(obj): _rules(obj) for obj in objects if obj["kind"] in ("Role", "ClusterRole")}
    result: dict[str, set[Permission]] = {}
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        meta = binding["metadata"]
        ref = binding["roleRef"]
        if binding["kind"] == "ClusterRoleBinding":
            if ref["kind"] != "ClusterRole":
                raise RbacModelError(f"ClusterRoleBinding {meta['name']} refers to a {ref['kind']}")
            namespace = ALL_NAMESPACES
            role_key = ("ClusterRole", "", ref["name"])
        else:
            namespace = meta["namespace"]
            role_key = (ref["kind"], namespace if ref["kind"] == "Role" else "", ref["name"])
        if role_key not in roles:
            raise RbacModelError(f"{binding['kind']} {meta.get('namespace', '')}/{meta['name']}: no {role_key}")
        permissions = {
            Permission(group, resource, sub, verb, namespace, name)
            for group, resource, sub, verb, name in roles[role_key]
        }
        for subject in binding.get("subjects") or []:
            result.setdefault(_user(subject, binding), set()).update(permissions)
    return result


def cluster_role_permissions(objects: Iterable[KubeObject], name: str) -> set[Permission]:
    """The permissions of ClusterRole `name` as a ClusterRoleBinding gives them (in every namespace)."""
    for obj in objects:
        if obj["kind"] == "ClusterRole" and obj["metadata"]["name"] == name:
            return {Permission(*rule, ALL_NAMESPACES) for rule in _rules(obj)}
    raise RbacModelError(f"no ClusterRole {name}")


def processes_by_user(objects: Iterable[KubeObject]) -> dict[str, set[str]]:
    """Which processes run as which ServiceAccount user, from the Deployments' containers."""
    result: dict[str, set[str]] = {}
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        user = service_account_user(obj["metadata"]["namespace"], pod.get("serviceAccountName") or "default")
        for container in pod["containers"]:
            command = (container.get("command") or [""])[0]
            if command not in PROCESSES:
                raise RbacModelError(
                    f"Deployment {obj['metadata']['name']}: container {container['name']} runs "
                    f"{command!r}, not one of {sorted(PROCESSES)}; name the process in `command`"
                )
            result.setdefault(user, set()).add(PROCESSES[command])
    return result


def grants(objects: Iterable[KubeObject]) -> set[Grant]:
    """Every permission of every process, through the ServiceAccount its pod runs as."""
    objects = list(objects)
    permissions = permissions_by_user(objects)
    return {
        Grant(process, *permission)
        for user, processes in processes_by_user(objects).items()
        for process in processes
        for permission in permissions.get(user, set())
    }


def allows(
    granted: Iterable[Grant | Permission],
    *,
    group: str,
    resource: str,
    subresource: str,
    verb: str,
    namespace: str,
    name: str = "",
    process: str | None = None,
) -> bool:
    """True when a request (`namespace` "" for cluster-wide; `name` "" for a collection) is covered; `process`
    limits to one process's grants."""
    for grant in granted:
        if process is not None and getattr(grant, "process", process) != process:
            continue
        if (grant.group, grant.resource, grant.subresource, grant.verb) != (group, resource, subresource, verb):
            continue
        if grant.name and grant.name != name:
            continue
        if grant.namespace == ALL_NAMESPACES or (namespace and grant.namespace == namespace):
            return True
    return False


class Recorded(Protocol):
    """An audit record as the sandbox keeps it (sandbox.audit.AuditRecord)."""

    @property
    def api_group(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def subresource(self) -> str: ...
    @property
    def verb(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...


def permissions_needed(
    records: Iterable[Recorded], fixed_namespaces: Iterable[str], by_name: Iterable[tuple[str, str]] = ()
) -> set[Permission]:
    """The permissions the recorded requests need. A request in one of `fixed_namespaces` (those a process is
    configured with: its Lease's, the executor's execution namespace) needs it there only. A cluster-wide request
    needs it in every namespace, and so does a request in any other namespace: those are the namespaces of the
    objects a process handles, which can be any namespace in a cluster. A request on a resource of `by_name`
    ((group, resource) granted by resourceNames) needs it on that object's name only."""
    fixed, named = set(fixed_namespaces), set(by_name)
    return {
        Permission(
            r.api_group,
            r.resource,
            r.subresource,
            r.verb,
            r.namespace if r.namespace in fixed else ALL_NAMESPACES,
            r.name if (r.api_group, r.resource) in named else "",
        )
        for r in records
    }


def _role_key(role: KubeObject) -> tuple[str, str, str]:
    meta = role["metadata"]
    return role["kind"], meta.get("namespace", "") if role["kind"] == "Role" else "", meta["name"]


UNNAMEABLE_VERBS = frozenset({"create", "list", "watch", "deletecollection"})


def _rules(role: KubeObject) -> set[tuple[str, str, str, str, str]]:
    """(group, resource, subresource, verb, name) of every rule of a Role or ClusterRole; name "" for any."""
    name = f"{role['kind']} {role['metadata']['name']}"
    if role.get("aggregationRule"):
        raise RbacModelError(f"{name}: aggregated ClusterRoles are not modelled")
    result = set()
    for rule in role.get("rules") or []:
        if rule.get("nonResourceURLs"):
            raise RbacModelError(f"{name}: nonResourceURLs are not modelled")
        groups, resources, verbs = rule.get("apiGroups") or [], rule.get("resources") or [], rule.get("verbs") or []
        if "*" in groups or "*" in verbs or any("*" in r for r in resources):
            raise RbacModelError(f"{name}: wildcards grant more than any process needs")
        names = rule.get("resourceNames") or [""]
        if names != [""] and UNNAMEABLE_VERBS & set(verbs):
            raise RbacModelError(
                f"{name}: resourceNames cannot limit {sorted(UNNAMEABLE_VERBS & set(verbs))} (Kubernetes authorizes "
                "them without a name); give them a rule of their own"
            )
        for group in groups:
            for resource in resources:
                plural, _, subresource = resource.partition("/")
                result.update(
                    (group, plural, subresource, verb, object_name) for verb in verbs for object_name in names
                )
    return result


def _user(subject: dict[str, Any], binding: KubeObject) -> str:
    if subject["kind"] == "ServiceAccount":
        if not subject.get("namespace"):
            raise RbacModelError(f"{binding['kind']} {binding['metadata']['name']}: ServiceAccount without namespace")
        return service_account_user(subject["namespace"], subject["name"])
    if subject["kind"] == "User":
        return str(subject["name"])
    raise RbacModelError(f"{binding['kind']} {binding['metadata']['name']}: {subject['kind']} subjects not modelled")
