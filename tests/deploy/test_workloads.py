"""The Deployments run locked down, probe and expose the ports their processes listen on, and elect leaders safely."""

import re

import pytest

from executor.settings import ExecutorSettings
from tests.deploy.manifests import (
    ROOT,
    SYSTEM_NAMESPACE,
    command,
    containers,
    env,
    env_prefix,
    named,
    of_kind,
    pod_labels,
    port_number,
    selects,
    settings,
)
from tests.deploy.rbac import Grant, grants

SHUTDOWN_SECONDS = 10  # shared/runtime/manager.py: the whole graceful shutdown stays under 10 s
# (metrics, health) ports of the first and second container of a pod: 9090/8081, then 9091/8082 (SPEC 8).
PORTS_BY_POSITION = [(9090, 8081), (9091, 8082)]


def dockerfile_user() -> tuple[int, int]:
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    uid, gid = users[-1]
    return int(uid), int(gid)


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (`100m`, `1`, `128Mi`, `1G`) as a number."""
    text = str(value)
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


# -- security ---------------------------------------------------------------------------------------------------------
def test_every_container_runs_as_the_images_non_root_user_with_nothing_extra(objects):
    uid, gid = dockerfile_user()
    for deployment, container in containers(objects):
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        effective = {**pod, **(container.get("securityContext") or {})}
        where = f"{deployment['metadata']['name']}/{container['name']}"
        assert effective.get("runAsNonRoot") is True, where
        assert effective.get("runAsUser") == uid != 0, where
        assert effective.get("runAsGroup") == gid != 0, where
        assert pod.get("fsGroup") == gid, where
        assert (effective.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where
        assert effective.get("readOnlyRootFilesystem") is True, where
        assert effective.get("allowPrivilegeEscalation") is False, where
        assert not effective.get("privileged"), where
        assert effective.get("capabilities") == {"drop": ["ALL"]}, where


def test_the_controllers_namespace_enforces_the_restricted_pod_security_standard(objects):
    labels = named(objects, "Namespace", SYSTEM_NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {d["metadata"]["namespace"] for d in of_kind(objects, "Deployment")} == {SYSTEM_NAMESPACE}


def test_every_container_has_requests_within_limits(objects):
    for _, container in containers(objects):
        resources = container.get("resources") or {}
        for resource in ("cpu", "memory"):
            request, limit = resources["requests"][resource], resources["limits"][resource]
            assert 0 < quantity(request) <= quantity(limit), f"{container['name']} {resource}: {request} > {limit}"


def test_pods_stop_within_the_grace_period(objects):
    for deployment in of_kind(objects, "Deployment"):
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert SHUTDOWN_SECONDS < grace <= 30, f"{deployment['metadata']['name']}: {grace}"


# -- ports, probes, Services ------------------------------------------------------------------------------------------
def test_each_container_names_its_process_and_sets_only_real_settings_of_it(objects):
    for _, container in containers(objects):
        assert command(container) in ("kubernaut-orchestrator", "kubernaut-executor")
        assert all(name.startswith(env_prefix(container)) for name in env(container)), container["name"]
        settings(container)  # unknown names and bad values fail here


def test_probes_target_the_health_port_the_process_listens_on(objects):
    for deployment, container in containers(objects):
        listening = settings(container)
        pod_containers = deployment["spec"]["template"]["spec"]["containers"]
        position = pod_containers.index(container)
        assert (listening.metrics_port, listening.health_port) == PORTS_BY_POSITION[position], container["name"]
        exposed = {p["containerPort"] for p in container["ports"]}
        assert exposed == {listening.metrics_port, listening.health_port}, container["name"]
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{container['name']} {probe}"
            assert port_number(container, get["port"]) == listening.health_port, f"{container['name']} {probe}"


def test_every_metrics_port_is_exposed_by_one_annotated_service(objects):
    services = of_kind(objects, "Service")
    for deployment, container in containers(objects):
        metrics_port = settings(container).metrics_port
        exposing = [
            (service, port)
            for service in services
            if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
            for port in service["spec"]["ports"]
            if isinstance(port["targetPort"], str)
            and any(p.get("name") == port["targetPort"] for p in container["ports"])
            and port_number(container, port["targetPort"]) == metrics_port
        ]
        assert len(exposing) == 1, f"{container['name']}: {len(exposing)} Services expose {metrics_port}"
        service, port = exposing[0]
        assert (port["name"], port["port"]) == ("metrics", 9090)
        assert service["metadata"]["name"] == f"{command(container)}-metrics"
        assert service["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(metrics_port),  # the pod's port: annotation-based configs scrape it directly
            "prometheus.io/path": "/metrics",
        }


def test_every_service_selects_the_pods_of_exactly_one_deployment(objects):
    for service in of_kind(objects, "Service"):
        selector = {"matchLabels": service["spec"]["selector"]}
        matched = [d for d in of_kind(objects, "Deployment") if selects(selector, pod_labels(d))]
        assert len(matched) == 1, service["metadata"]["name"]


# -- Deployments, PDBs, spreading --------------------------------------------------------------------------------------
def test_every_deployment_selects_its_own_pod_template(objects):
    deployments = of_kind(objects, "Deployment")
    for deployment in deployments:
        others = [d for d in deployments if d is not deployment]
        assert selects(deployment["spec"]["selector"], pod_labels(deployment))
        assert not [d for d in others if selects(deployment["spec"]["selector"], pod_labels(d))]


def test_every_deployment_has_one_disruption_budget_that_a_drain_can_satisfy(objects, overlay):
    budgets = of_kind(objects, "PodDisruptionBudget")
    for deployment in of_kind(objects, "Deployment"):
        mine = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(mine) == 1, deployment["metadata"]["name"]
        spec, replicas = mine[0]["spec"], deployment["spec"]["replicas"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec)
        allowed_disruptions = spec.get("maxUnavailable", replicas - spec.get("minAvailable", 0))
        assert allowed_disruptions >= 1, "a node drain would hang"
        if overlay == "production":
            assert spec.get("minAvailable") == 1 and replicas == 2


@pytest.mark.parametrize(("overlay", "replicas"), [("kind", 1), ("production", 2), ("two-container", 1)])
def test_replicas_per_overlay(objects, replicas):
    assert {d["spec"]["replicas"] for d in of_kind(objects, "Deployment")} == {replicas}


@pytest.mark.parametrize("overlay", ["production"])
def test_production_spreads_the_replicas_over_nodes(objects):
    for deployment in of_kind(objects, "Deployment"):
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        by_node = [c for c in constraints if c["topologyKey"] == "kubernetes.io/hostname"]
        assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule"
        assert all(selects(c["labelSelector"], pod_labels(deployment)) for c in constraints)


def test_one_image_runs_both_processes(objects, overlay):
    images = {c["image"] for _, c in containers(objects)}
    expected = {
        "kind": "kubernaut-controlplane:dev",
        "production": "registry.example.com/kubernaut/kubernaut-controlplane:0.1.0",
        "two-container": "registry.example.com/kubernaut/kubernaut-controlplane:0.1.0",
    }
    assert images == {expected[overlay]}


@pytest.mark.parametrize("overlay", ["kind"])
def test_kind_uses_the_image_loaded_into_the_node(objects):
    assert {c.get("imagePullPolicy") for _, c in containers(objects)} == {"IfNotPresent"}


# -- identities and leader election -----------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_each_process_has_its_own_deployment_and_service_account(objects):
    accounts = {}
    for deployment, container in containers(objects):
        assert len(deployment["spec"]["template"]["spec"]["containers"]) == 1
        accounts[command(container)] = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert accounts == {"kubernaut-orchestrator": "kubernaut-orchestrator", "kubernaut-executor": "kubernaut-executor"}


@pytest.mark.parametrize("overlay", ["two-container"])
def test_the_two_container_pod_runs_both_processes_under_one_service_account(objects):
    (deployment,) = of_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert [command(c) for c in pod["containers"]] == ["kubernaut-orchestrator", "kubernaut-executor"]
    assert pod["serviceAccountName"] == "kubernaut-controlplane"


def test_every_process_elects_a_leader_through_its_own_lease_it_may_write(objects):
    granted = grants(objects)
    leases = []
    for deployment, container in containers(objects):
        process = command(container).removeprefix("kubernaut-")
        configured = settings(container)
        assert configured.leader_election is True, f"{container['name']}: replicas need leader election"
        namespace = configured.lease_namespace or deployment["metadata"]["namespace"]
        for verb in ("get", "update"):  # on its own Lease only; the Lease ships with the manifests (no create)
            lease = Grant(process, "coordination.k8s.io", "leases", "", verb, namespace, configured.lease_name)
            assert lease in granted
        assert [o for o in of_kind(objects, "Lease") if o["metadata"]["name"] == configured.lease_name]
        leases.append((namespace, configured.lease_name))
    assert len(set(leases)) == len(leases), f"two processes would share a Lease: {leases}"


def test_the_execution_namespace_and_its_default_service_account_exist(objects):
    for _, container in containers(objects):
        if command(container) == "kubernaut-executor":
            configured = settings(container)
            assert isinstance(configured, ExecutorSettings)
            named(objects, "Namespace", configured.execution_namespace)
            account = named(objects, "ServiceAccount", configured.default_service_account)
            assert account["metadata"]["namespace"] == configured.execution_namespace


# -- network ----------------------------------------------------------------------------------------------------------
def test_the_network_policy_admits_scrapes_of_every_metrics_port_and_egress_to_api_and_dns(objects):
    (policy,) = of_kind(objects, "NetworkPolicy")
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
    egress_ports = {(p.get("protocol", "TCP"), p["port"]) for rule in spec["egress"] for p in rule["ports"]}
    for deployment, container in containers(objects):
        assert selects(spec["podSelector"], pod_labels(deployment))
        assert settings(container).metrics_port in ingress_ports
    assert {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)} <= egress_ports
