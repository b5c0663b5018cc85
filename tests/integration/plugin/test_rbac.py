"""The users' ClusterRoles grant exactly the calls `kubectl kubernaut` makes: every verb is run as a user of its own,
the sandbox's audit log records what it called, and the rules of kubernaut-viewer (explain, status) and
kubernaut-operator (every verb) of each built overlay are compared with the calls, both ways - as
tests/e2e/test_rbac.py does for the controllers.
"""

from __future__ import annotations

import pytest

from sandbox.testing import SandboxHandle
from tests.deploy.manifests import OVERLAYS, built
from tests.deploy.rbac import Permission, allows, cluster_role_permissions, permissions_needed
from tests.integration.plugin.conftest import WFE, Plugin, Scene, StartOrchestrator

# Every authenticated user may create a SelfSubjectReview (the built-in system:basic-user ClusterRole).
WHOAMI = ("authentication.k8s.io", "selfsubjectreviews", "", "create")


async def _calls(sandbox: SandboxHandle, user: str) -> set[Permission]:
    records = [
        r
        for r in await sandbox.admin.aio.audit(user=user)
        if (r.api_group, r.resource, r.subresource, r.verb) != WHOAMI
    ]
    assert records, f"nothing recorded for {user}"
    return permissions_needed(records, [])


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_the_users_roles_grant_exactly_the_calls_of_the_plugin(
    overlay: str, scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin, sandbox: SandboxHandle
):
    viewer, operator = f"viewer-{overlay}", f"operator-{overlay}"
    await start_orchestrator()
    await scene.request("old", fingerprint_seed="old")
    await scene.phase("old", "Executing")
    await scene.run("old")
    await scene.fail("old")
    await scene.request("other", target=("Deployment", "api", "default"), fingerprint_seed="other")
    await scene.phase("other", "Executing")
    await scene.request("waiting", target=("Deployment", "api", "default"), fingerprint_seed="waiting")
    await scene.blocked("waiting", "ResourceBusy")
    await scene.kube.patch_status(
        type(scene).RESOURCE, scene.namespace, "old", {"skipReason": "IneffectiveChain", "ineffectiveCount": 3}
    )

    as_viewer = sandbox.kubeconfig_for(viewer)
    for argv in (("explain", "rr", "waiting"), ("status",), ("status", "-A")):
        assert (await plugin(*argv, kubeconfig=as_viewer)).code == 0, argv
    as_operator = sandbox.kubeconfig_for(operator)
    for argv in (
        ("explain", "rr", "waiting"),
        ("status", "-A"),
        ("ack", "wfe", await scene.execution_of("old"), "--reason", "checked"),
        ("ack", "chain", "rr", "old", "--reason", "checked"),
        ("unblock", "rr", "waiting"),
    ):
        ran = await plugin(*argv, kubeconfig=as_operator)
        assert ran.code == 0, (argv, ran.stderr)
    assert (await scene.get("waiting"))["metadata"]["annotations"]
    assert (await scene.kube.get(WFE, scene.namespace, await scene.execution_of("old")))["metadata"]["annotations"]

    objects = built(overlay)
    for user, role in ((viewer, "kubernaut-viewer"), (operator, "kubernaut-operator")):
        granted, used = cluster_role_permissions(objects, role), await _calls(sandbox, user)
        refused = {p for p in used if not allows(granted, **p._asdict())}
        assert not refused, f"{overlay}: {role} would refuse {sorted(refused)}"
        assert granted == used, f"{overlay}: {role} holds unused {sorted(granted - used)}"
