"""The in-cluster configuration against a sandbox serving HTTPS that accepts only the ServiceAccount's token.

The ServiceAccount volume is written and rotated as kubelet does it (sandbox.serviceaccount); the client is built
by `incluster_configuration`, the function `KubeClient.connect` uses in a pod, from that directory and the
KUBERNETES_SERVICE_HOST/PORT a pod gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme
from kubernetes_asyncio.client import ApiClient

from sandbox.serviceaccount import ProjectedServiceAccount
from sandbox.testing import SandboxHandle, running_sandbox
from shared.apiresource import NAMESPACES
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.incluster import InClusterConfigError, incluster_configuration
from shared.settings import ControllerSettings

USER = "system:serviceaccount:kubernaut-system:kubernaut-controlplane"

pytestmark = pytest.mark.sandbox_only


@pytest.fixture(scope="module")
def tls_sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(tls=True, tokens=(("token-0", USER),)) as handle:
        yield handle


@pytest.fixture(autouse=True)
def only_the_first_token(tls_sandbox: SandboxHandle) -> None:
    tls_sandbox.admin.set_tokens({"token-0": USER})


def service_environ(sandbox: SandboxHandle) -> dict[str, str]:
    address = urlsplit(sandbox.url)
    return {"KUBERNETES_SERVICE_HOST": str(address.hostname), "KUBERNETES_SERVICE_PORT": str(address.port)}


@pytest.fixture
def volume(tmp_path: Path, tls_sandbox: SandboxHandle) -> ProjectedServiceAccount:
    assert tls_sandbox.ca_pem is not None
    return ProjectedServiceAccount(tmp_path / "sa", token="token-0", ca_pem=tls_sandbox.ca_pem, namespace="team-a")


@pytest.fixture
async def kube(volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle) -> AsyncIterator[KubeClient]:
    configuration = incluster_configuration(volume.directory, service_environ(tls_sandbox))
    client = KubeClient(ApiClient(configuration=configuration), user_agent="tests")
    try:
        yield client
    finally:
        await client.close()


async def test_requests_go_over_https_as_the_service_account(kube: KubeClient, tls_sandbox: SandboxHandle):
    assert tls_sandbox.url.startswith("https://")
    before = tls_sandbox.admin.state()["auditLastSequence"]
    await kube.list(NAMESPACES)
    records = tls_sandbox.admin.audit(since=before)
    assert [(r.user, r.verb, r.code) for r in records] == [(USER, "list", 200)]


async def test_a_token_kubelet_rotates_is_used_from_the_next_request_without_a_restart(
    kube: KubeClient, volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle
):
    await kube.list(NAMESPACES)
    # Several rotations within one second (same timestamps in the directory names), each revoking the token before.
    for number in range(1, 6):
        volume.rotate(f"token-{number}")
        tls_sandbox.admin.set_tokens({f"token-{number}": USER})
        await kube.list(NAMESPACES)


async def test_a_rotated_token_is_used_by_a_watch_opened_after_it(
    kube: KubeClient, volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle
):
    volume.rotate("token-watch")
    tls_sandbox.admin.set_tokens({"token-watch": USER})
    async with kube.stream(NAMESPACES.path(None), query={"watch": "true", "timeoutSeconds": "1"}) as response:
        assert response.status == 200


async def test_a_token_file_that_cannot_be_read_keeps_the_last_token_until_it_can(
    kube: KubeClient, volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle
):
    await kube.list(NAMESPACES)
    volume.replace("token", None)
    await kube.list(NAMESPACES)  # the token read before is still valid, so requests still work
    volume.replace("token", b"token-back")
    tls_sandbox.admin.set_tokens({"token-back": USER})
    await kube.list(NAMESPACES)


async def test_a_token_the_server_does_not_know_is_refused_with_401(
    volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle
):
    volume.rotate("not-issued-by-the-cluster")
    configuration = incluster_configuration(volume.directory, service_environ(tls_sandbox))
    async with KubeClient(ApiClient(configuration=configuration)) as client:
        with pytest.raises(ApiError) as raised:
            await client.list(NAMESPACES)
    assert (raised.value.status, raised.value.reason) == (401, "Unauthorized")


async def test_a_server_certificate_of_another_ca_is_refused(
    volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle
):
    volume.replace("ca.crt", trustme.CA().cert_pem.bytes())
    configuration = incluster_configuration(volume.directory, service_environ(tls_sandbox))
    async with KubeClient(ApiClient(configuration=configuration)) as client:
        with pytest.raises(ApiError) as raised:
            await client.list(NAMESPACES)
    assert raised.value.status == 0 and "certificate verify failed" in raised.value.message


@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        ("token", None, "cannot read the ServiceAccount token file {dir}/token: No such file or directory"),
        ("token", b"", "the ServiceAccount token file {dir}/token is empty"),
        ("token", b" \n", "the ServiceAccount token file {dir}/token is empty"),
        ("token", b"one\ntwo", "the ServiceAccount token file {dir}/token holds more than one line"),
        ("token", b"\xff\xfe", "the ServiceAccount token file {dir}/token is not ASCII text"),
        ("ca.crt", None, "cannot read the ServiceAccount CA file {dir}/ca.crt: No such file or directory"),
        ("ca.crt", b"", "the ServiceAccount CA file {dir}/ca.crt holds no PEM certificate"),
        ("ca.crt", b"not a certificate", "the ServiceAccount CA file {dir}/ca.crt holds no PEM certificate"),
    ],
)
def test_a_missing_or_unusable_file_is_one_line_naming_it(
    volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle, file: str, content: bytes | None, expected: str
):
    volume.replace(file, content)
    with pytest.raises(InClusterConfigError) as raised:
        incluster_configuration(volume.directory, service_environ(tls_sandbox))
    assert str(raised.value) == expected.format(dir=volume.directory)


@pytest.mark.parametrize("file", ["token", "ca.crt"])
def test_a_file_that_cannot_be_read_is_one_line_naming_it(
    volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle, file: str
):
    # Tests may run as root, who reads any file whatever its mode; a directory in the file's place cannot be read.
    (volume.directory / file).unlink()
    (volume.directory / file).mkdir()
    with pytest.raises(InClusterConfigError) as raised:
        incluster_configuration(volume.directory, service_environ(tls_sandbox))
    message = str(raised.value)
    assert "\n" not in message and str(volume.directory / file) in message and "Is a directory" in message


@pytest.mark.parametrize("variable", ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"])
def test_a_missing_service_variable_is_named(
    volume: ProjectedServiceAccount, tls_sandbox: SandboxHandle, variable: str
):
    environ = service_environ(tls_sandbox)
    environ[variable] = ""
    with pytest.raises(InClusterConfigError, match=f"^in-cluster configuration: {variable} is not set$"):
        incluster_configuration(volume.directory, environ)


def test_the_lease_namespace_is_the_pods_namespace_from_the_namespace_file(
    volume: ProjectedServiceAccount, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("shared.settings.IN_CLUSTER_NAMESPACE_FILE", volume.directory / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    settings = ControllerSettings()
    assert settings.resolved_lease_namespace() == "team-a"
    assert settings.leader_election_enabled()
    assert ControllerSettings(lease_namespace="elsewhere").resolved_lease_namespace() == "elsewhere"
