"""The container image, built with `make image` and run the way the overlays' pod specs say.

Pods get their own network namespace and reach the sandbox (HTTPS, ServiceAccount tokens only) through the
in-cluster configuration: the token, CA and namespace mounted at /var/run/secrets/kubernetes.io/serviceaccount and
KUBERNETES_SERVICE_HOST/PORT set (tests/image/pod.py). The Tekton simulator runs on the host, as Tekton would run
beside the controllers.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack import Stack
from shared.apiresource import LEASES
from shared.models.remediationrequest import RemediationRequest
from shared.runtime.client import KubeClient
from tests.factories import remediation_request
from tests.image.conftest import ADMIN, BuiltImage, Cluster, kustomize, service_account_user
from tests.image.pod import SERVICE_ACCOUNT_MOUNT, Pod, docker, probe_ports
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.sandbox_only, pytest.mark.timeout(600)]

RRS = RemediationRequest.RESOURCE
TERMINATION_GRACE = 5  # seconds: SIGTERM must end each container within this (docker stop kills after it: 137)


def deployments(overlay: str) -> list[dict[str, Any]]:
    return [obj for obj in kustomize(overlay) if obj["kind"] == "Deployment"]


# -- the image itself ---------------------------------------------------------------------------------------------
def test_the_image_builds_and_runs_as_a_non_root_user(image: BuiltImage):
    assert image.config["Cmd"] == ["kubernaut-orchestrator"]
    uid = docker("run", "--rm", "--network", "none", "--read-only", image.tag, "id", "-u").stdout.strip()
    assert uid.isdigit() and int(uid) != 0
    assert image.user.partition(":")[0] == uid  # numeric, so kubelet can verify runAsNonRoot


@pytest.mark.parametrize("command", ["kubernaut-orchestrator", "kubernaut-executor"])
def test_each_command_answers_help_with_a_read_only_root(image: BuiltImage, command: str):
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", image.tag, command, "--help",
    )  # fmt: skip
    assert result.stdout.startswith(f"usage: {command}")
    assert result.stderr == ""  # nothing tried to write (bytecode, caches) to the read-only root


# -- pods of the overlays -------------------------------------------------------------------------------------------
@pytest.fixture
async def admin(cluster: Cluster) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(cluster.sandbox.kubeconfig_for(ADMIN), user_agent="tests")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def tekton(cluster: Cluster, tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(cluster.sandbox.kubeconfig_for, tmp_path / "tekton")
    (tmp_path / "tekton").mkdir()
    stack.tekton().start().wait_ready()
    try:
        yield stack
    finally:
        stack.stop()


class Pods:
    """The pods a test starts, removed (with their bridges) at the end whatever happened."""

    def __init__(self, image: BuiltImage, cluster: Cluster, directory: Path) -> None:
        self.image, self.cluster, self.directory = image, cluster, directory
        self.started: list[Pod] = []

    def start(self, deployment: dict[str, Any], **options: Any) -> Pod:
        return self.create(deployment, **options).start()

    def create(self, deployment: dict[str, Any], **options: Any) -> Pod:
        """The pod, its ServiceAccount volume written, not started yet."""
        namespace = options.get("namespace") or deployment["metadata"]["namespace"]
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        pod = Pod(
            deployment,
            image=self.image.tag,
            image_user=self.image.user,
            workdir=self.directory / f"{deployment['metadata']['name']}-{len(self.started)}",
            api_socket=self.cluster.api_socket,
            api_port=self.cluster.api_port,
            ca_pem=self.cluster.sandbox.ca_pem or b"",
            token=self.cluster.tokens[service_account_user(namespace, account)],
            **options,
        )
        self.started.append(pod)
        return pod


@pytest.fixture
def pods(image: BuiltImage, cluster: Cluster, tmp_path: Path) -> Iterator[Pods]:
    running = Pods(image, cluster, tmp_path)
    try:
        yield running
    finally:
        for pod in running.started:
            pod.remove()


async def wait_ready(pod: Pod) -> None:
    await asyncio.gather(*(pod.wait_probe(name) for name in pod.containers))
    for container in pod.pod_spec["containers"]:
        if "livenessProbe" in container:
            await pod.wait_probe(container["name"], "livenessProbe")


async def completes(admin: KubeClient, name: str, namespace: str = "default") -> None:
    """Create a request (its own target, so no other request blocks it) and wait until it is Completed."""
    # A bundle the shipped overlays allow (KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES): the containers run as the pod spec says.
    bundle = "registry.example.com/kubernaut/workflows/restart-pods:v1"
    await admin.create(RRS, remediation_request(name, namespace, target=("Deployment", name, namespace), bundle=bundle))
    last: dict[str, Any] = {}

    async def completed() -> bool:
        last.update((await admin.get(RRS, namespace, name)).get("status") or {})
        if last.get("phase") in ("Failed", "TimedOut", "Skipped", "Blocked"):
            raise AssertionError(f"{name} ended {last}, not Completed")
        return last.get("phase") == "Completed"

    try:
        await eventually(completed, timeout=90, what=f"{name} Completed")
    except AssertionError as failure:
        raise AssertionError(f"{failure}; its status: {last}") from None


async def leases_held(admin: KubeClient, namespace: str, pod: Pod) -> set[str]:
    """Names of the Leases in `namespace` held by a process of `pod` (identity: the pod's hostname + suffix)."""
    listed = await admin.list(LEASES, namespace)
    return {
        lease["metadata"]["name"]
        for lease in listed["items"]
        if str((lease.get("spec") or {}).get("holderIdentity", "")).startswith(f"{pod.name}_")
    }


def stop_all(pod: Pod) -> dict[str, int]:
    return {name: pod.stop(name, TERMINATION_GRACE) for name in pod.containers}


async def test_the_two_container_pod_runs_as_its_spec_says_and_completes_a_request(
    pods: Pods, cluster: Cluster, admin: KubeClient, tekton: Stack
):
    (deployment,) = deployments("two-container")
    namespace = deployment["metadata"]["namespace"]
    pod = pods.start(deployment)
    assert set(pod.containers) == {"orchestrator", "executor"}
    await wait_ready(pod)
    await eventually(
        lambda: leases_held(admin, namespace, pod), timeout=30, what="both controllers' Leases in the pod's namespace"
    )
    assert len(await leases_held(admin, namespace, pod)) == 2
    await completes(admin, "rr-image-1")

    # kubelet rotates the projected token; the old one is revoked, the processes go on with the new one.
    user = service_account_user(namespace, deployment["spec"]["template"]["spec"]["serviceAccountName"])
    rotated = secrets.token_urlsafe(24)
    pod.service_account.rotate(rotated)
    cluster.set_token(user, rotated)
    since = cluster.sandbox.admin.state()["auditLastSequence"]
    await completes(admin, "rr-image-2")
    audit = cluster.sandbox.admin.audit(since=since)
    assert [r for r in audit if r.code == 401] == []  # a refused token is audited as system:anonymous
    assert {r.verb for r in audit if r.user == user} >= {"create", "patch"}  # both processes wrote as the pod

    assert stop_all(pod) == {"orchestrator": 0, "executor": 0}


async def test_the_kind_overlays_two_deployments_run_side_by_side_and_complete_a_request(
    pods: Pods, admin: KubeClient, tekton: Stack
):
    found = deployments("kind")
    assert {d["metadata"]["name"] for d in found} == {"kubernaut-orchestrator", "kubernaut-executor"}
    # Both pods use ports 8081 and 9090, each in its own network namespace, as on a node.
    assert len({frozenset(probe_ports(d["spec"]["template"]["spec"]["containers"][0])) for d in found}) == 1
    started = [pods.start(deployment) for deployment in found]
    for pod in started:
        assert len(pod.containers) == 1
    await asyncio.gather(*(wait_ready(pod) for pod in started))
    await completes(admin, "rr-image-kind")
    for pod in started:
        assert set(stop_all(pod).values()) == {0}


async def test_the_lease_goes_to_the_namespace_the_namespace_file_names(pods: Pods, admin: KubeClient):
    (deployment,) = deployments("two-container")
    pod = pods.start(deployment, namespace="team-a")  # as if deployed to team-a: the file says team-a
    await wait_ready(pod)
    held = await eventually(lambda: leases_held(admin, "team-a", pod), timeout=30, what="Leases in team-a")
    assert len(held) == 2
    assert not await leases_held(admin, deployment["metadata"]["namespace"], pod)
    assert set(stop_all(pod).values()) == {0}


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("token", "cannot read the ServiceAccount token file {dir}/token: No such file or directory"),
        ("ca.crt", "cannot read the ServiceAccount CA file {dir}/ca.crt: No such file or directory"),
    ],
)
def test_a_missing_service_account_file_stops_each_container_with_one_line_naming_it(
    pods: Pods, missing: str, message: str
):
    (deployment,) = deployments("two-container")
    pod = pods.create(deployment)
    pod.service_account.replace(missing, None)
    pod.start()
    for container in pod.pod_spec["containers"]:
        command = container["command"][0]
        assert pod.wait_exit(container["name"]) == 1
        expected = f"{command}: cannot load the Kubernetes configuration: {message.format(dir=SERVICE_ACCOUNT_MOUNT)}"
        assert pod.logs(container["name"]).strip().splitlines()[-1] == expected
