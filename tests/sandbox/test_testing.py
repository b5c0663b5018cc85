"""sandbox.testing: a sandbox in a thread, kubeconfigs per user, and clean shutdown."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes_asyncio import config

from sandbox.client import AdminError, SandboxAdmin
from sandbox.testing import running_sandbox, sandbox_process
from tests.contract import kube


def test_a_running_sandbox_serves_its_url_and_writes_kubeconfigs_per_user():
    with running_sandbox(validation=False) as sandbox:
        with urllib.request.urlopen(f"{sandbox.url}/version") as response:
            assert response.status == 200
        config = yaml.safe_load(sandbox.kubeconfig_for("system:serviceaccount:ns:controller").read_text())
        assert config["users"][0]["user"]["token"] == "system:serviceaccount:ns:controller"
        assert config["clusters"][0]["cluster"]["server"] == sandbox.url
        assert sandbox.admin.state()["validation"] is False
        directory = sandbox.directory
    assert not directory.exists()


def test_a_stopped_sandbox_refuses_connections():
    with running_sandbox() as sandbox:
        url = sandbox.url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/version", timeout=2)


def test_the_admin_client_reports_bad_calls_and_unreachable_servers():
    with running_sandbox() as sandbox, pytest.raises(AdminError):
        sandbox.admin.fail_requests(code=200)
    with pytest.raises(AdminError):
        SandboxAdmin("http://127.0.0.1:9", timeout=1).state()


def test_closed_watches_are_forgotten():
    with running_sandbox() as sandbox:

        async def watch_once() -> None:
            api = await config.new_client_from_config(config_file=str(sandbox.kubeconfig_path))
            try:
                async with kube.WatchStream(api, "/api/v1/namespaces", {"timeoutSeconds": "60"}) as stream:
                    await stream.next()
                    sandbox.admin.wait_for_watches("namespaces")
            finally:
                await api.close()

        asyncio.run(watch_once())

        async def no_watches() -> bool:
            return not sandbox.admin.watches()

        asyncio.run(kube.eventually(no_watches, timeout=10))


def test_a_sandbox_process_serves_and_takes_faults_over_http():
    with sandbox_process(validation=False) as sandbox:
        with urllib.request.urlopen(f"{sandbox.url}/version") as response:
            assert response.status == 200
        sandbox.admin.fail_requests(code=503, resource="namespaces")
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(f"{sandbox.url}/api/v1/namespaces")
        assert raised.value.code == 503
        assert sandbox.admin.state()["validation"] is False
        url = sandbox.url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/version", timeout=2)


@pytest.mark.parametrize("start", [running_sandbox, sandbox_process])
async def test_a_tls_sandbox_with_tokens_serves_https_to_its_kubeconfig_and_refuses_other_tokens(start):
    from shared.apiresource import NAMESPACES
    from shared.runtime.client import ApiError, KubeClient

    with start(tls=True, tokens=(("secret-token", "alice"),)) as sandbox:
        assert sandbox.url.startswith("https://") and sandbox.ca_path is not None
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"{sandbox.url}/version", timeout=5)  # not trusted without the sandbox's CA
        before = sandbox.admin.state()["auditLastSequence"]
        async with await KubeClient.connect(sandbox.kubeconfig_path) as client:
            await client.list(NAMESPACES)
        assert [r.user for r in sandbox.admin.audit(since=before)] == ["alice"]
        async with await KubeClient.connect(sandbox.kubeconfig_for("mallory")) as client:
            with pytest.raises(ApiError) as raised:
                await client.list(NAMESPACES)
        assert (raised.value.status, raised.value.reason, raised.value.message) == (401, "Unauthorized", "Unauthorized")
