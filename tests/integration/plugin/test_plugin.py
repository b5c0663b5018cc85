"""`kubectl kubernaut` against the sandbox: each verb, each error, the JSON shapes, and that `explain` decides what
the orchestrator then does.

The plugin runs as a real subprocess (its console script; once through `kubectl` itself); the orchestrator runs in
the test's loop and the test plays the executor.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.routing import CHECKS
from sandbox.kubeconfig import write_kubeconfig
from sandbox.stack import free_port
from sandbox.testing import SandboxHandle
from shared.kubetime import parse_time
from shared.runtime.client import KubeClient
from tests import factories
from tests.integration.helpers import eventually
from tests.integration.plugin.conftest import (
    BIN,
    DEPLOYMENTS,
    RR,
    WFE,
    Plugin,
    Ran,
    Scene,
    StartOrchestrator,
    orchestrator_deployment,
    watching,
)

ACK = "kubernaut.ai/execution-failure-acknowledged"
UNBLOCK = "kubernaut.ai/unblock"
CHAIN_ACK = "kubernaut.ai/ineffective-chain-acknowledged"

# The stable keys of each document (README.md, "kubectl kubernaut"): a change here is a change of the interface.
EXPLAIN_KEYS = {
    "kind",
    "evaluatedAt",
    "request",
    "settings",
    "bypassTimeBlocks",
    "dryRun",
    "checks",
    "decision",
    "agreesWithStatus",
    "difference",
    "notes",
}
REQUEST_KEYS = {
    "namespace",
    "name",
    "created",
    "fingerprint",
    "target",
    "workflowId",
    "phase",
    "reason",
    "blockedUntil",
    "unblockAnnotation",
}
SETTINGS_KEYS = {"source", "deployment", "note", "values"}
CHECK_KEYS = {"check", "matched", "decides", "bypassed", "facts", "decision"}
DECISION_KEYS = {
    "verdict",
    "reason",
    "message",
    "until",
    "remainingSeconds",
    "blockingWorkflowExecution",
    "duplicateOf",
}
STATUS_KEYS = {"kind", "evaluatedAt", "namespace", "settings", "phases", "blocked", "manualReview", "notes"}
BLOCKED_KEYS = {
    "namespace",
    "name",
    "reason",
    "blockedUntil",
    "remainingSeconds",
    "blockingWorkflowExecution",
    "duplicateOf",
    "message",
    "unblockCommand",
}
FAILED_EXECUTION_KEYS = {
    "kind",
    "namespace",
    "target",
    "workflowExecution",
    "failedAt",
    "failureReason",
    "message",
    "requests",
    "command",
}
CHAIN_KEYS = {"kind", "namespace", "target", "fingerprint", "request", "ineffectiveCount", "message", "command"}
ANNOTATED_KEYS = {
    "kind",
    "action",
    "resource",
    "namespace",
    "name",
    "annotation",
    "value",
    "previous",
    "by",
    "identitySource",
    "notes",
}
ROUTING_CHECKS = [check.name for check in CHECKS]  # SPEC 4.2's table, as routing has it


def one_line_error(ran: Ran, *, code: int = 1) -> str:
    assert ran.code == code, (ran.code, ran.stdout, ran.stderr)
    assert ran.stdout == ""
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), ran.stderr
    assert "Traceback" not in ran.stderr
    return lines[0]


def routed(status: dict[str, Any]) -> bool:
    return status.get("phase") not in (None, "Pending")


def outcome_of(status: dict[str, Any]) -> tuple[str, str | None, datetime | None]:
    """What the orchestrator did, in the terms of a routing decision."""
    until = parse_time(status["blockedUntil"]) if status.get("blockedUntil") else None
    return status["phase"], status.get("blockReason") or status.get("skipReason"), until


def predicted(decision: dict[str, Any]) -> tuple[str, str | None, datetime | None]:
    phase = {"Execute": "Executing", "Block": "Blocked", "Skip": "Failed"}[decision["verdict"]]
    return phase, decision["reason"], parse_time(decision["until"]) if decision["until"] else None


# -- scenes: the state before a new request `new` arrives ------------------------------------------------------------
async def _nothing(scene: Scene) -> dict[str, Any]:
    return {}


async def _busy(scene: Scene) -> dict[str, Any]:
    await scene.request("old", fingerprint_seed="old")
    await scene.phase("old", "Executing")
    await scene.run("old")
    return {"fingerprint_seed": "new"}


async def _recently_remediated(scene: Scene) -> dict[str, Any]:
    await _busy(scene)
    await scene.complete("old")
    await scene.phase("old", "Completed")
    return {"fingerprint_seed": "new"}


async def _failed_mid_run(scene: Scene) -> dict[str, Any]:
    await _busy(scene)
    await scene.fail("old", was_execution_failure=True)
    await scene.phase("old", "Failed")
    return {"fingerprint_seed": "new"}


async def _acknowledged(scene: Scene) -> dict[str, Any]:
    await _failed_mid_run(scene)
    await scene.annotate(WFE, await scene.execution_of("old"), ACK, "checked")
    return {"fingerprint_seed": "new"}


async def _duplicate(scene: Scene) -> dict[str, Any]:
    await _busy(scene)
    return {"fingerprint_seed": "old"}


async def _backoff(scene: Scene) -> dict[str, Any]:
    await _busy(scene)
    await scene.fail("old", reason="ImagePullBackOff", was_execution_failure=False)
    status = await scene.phase("old", "Failed")
    assert status.get("nextAllowedExecution")
    return {"fingerprint_seed": "old"}


async def _dry_run_after_completion(scene: Scene) -> dict[str, Any]:
    await _recently_remediated(scene)
    return {"fingerprint_seed": "new", "annotations": {"kubernaut.ai/dry-run": "true"}}


async def _dry_run(scene: Scene) -> dict[str, Any]:
    return {"annotations": {"kubernaut.ai/dry-run": "true"}}


SCENES: dict[str, Callable[[Scene], Awaitable[dict[str, Any]]]] = {
    "execute": _nothing,
    "resource-busy": _busy,
    "recently-remediated": _recently_remediated,
    "previous-execution-failed": _failed_mid_run,
    "acknowledged-failure": _acknowledged,
    "duplicate": _duplicate,
    "exponential-backoff": _backoff,
    "dry-run": _dry_run,
    "dry-run-recently-remediated": _dry_run_after_completion,
}


@pytest.mark.parametrize("name", SCENES)
async def test_explain_decides_what_the_orchestrator_then_does(
    name: str, scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin
):
    orchestrator = await start_orchestrator()
    options = await SCENES[name](scene)
    await orchestrator.shutdown()
    annotations = options.pop("annotations", {})
    await scene.request("new", **options)
    for key, value in annotations.items():
        await scene.annotate(RR, "new", key, value)

    before = await plugin.json("explain", "rr", "new")
    assert before["dryRun"] is bool(annotations)
    assert before["request"]["phase"] is None and before["agreesWithStatus"] is None
    assert before["settings"]["source"] == "deployment"
    assert [c["check"] for c in before["checks"]] == ROUTING_CHECKS
    deciding = [c for c in before["checks"] if c["decides"]]
    assert len(deciding) == (0 if before["decision"]["verdict"] == "Execute" else 1)

    await start_orchestrator()
    status = await scene.until("new", routed, "routed")
    expected = predicted(before["decision"])
    if before["dryRun"] and expected[0] == "Executing":
        expected = ("Completed", None, None)  # SPEC 4.8: what production would run, a dry run only records
        assert status.get("outcome") == "DryRun"
    assert outcome_of(status) == expected, (name, before["decision"], status)
    if status["phase"] == "Blocked":
        after = await plugin.json("explain", "rr", "new")
        assert after["agreesWithStatus"] is True, after["difference"]


async def test_explain_says_when_a_block_has_expired_and_what_the_orchestrator_will_do(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin, kube: KubeClient
):
    fast = watching(scene.namespace, KUBERNAUT_ORCHESTRATOR_RECENTLY_REMEDIATED_COOLDOWN="2s")
    deployment = orchestrator_deployment(scene.namespace, fast)
    deployment["metadata"]["name"] = "fast-orchestrator"
    await kube.create(DEPLOYMENTS, deployment)
    orchestrator = await start_orchestrator(recently_remediated_cooldown="2s")
    options = await _recently_remediated(scene)
    await scene.request("new", **options)
    status = await scene.blocked("new", "RecentlyRemediated")
    explain = ("explain", "rr", "new", "--settings-from", f"{scene.namespace}/fast-orchestrator")
    report = await plugin.json(*explain)
    assert report["settings"]["values"]["recentlyRemediatedCooldown"] == "2s"
    assert report["agreesWithStatus"] is True
    await orchestrator.shutdown()
    until = parse_time(status["blockedUntil"])
    await eventually(lambda: datetime.now(UTC) > until, timeout=10, what="the block's end")

    report = await plugin.json(*explain)
    assert report["agreesWithStatus"] is False
    assert "re-routes it at once" in report["difference"]
    assert report["decision"]["verdict"] == "Execute"
    await start_orchestrator(recently_remediated_cooldown="2s")
    await scene.phase("new", "Executing")


async def test_unblock_previews_with_explain_then_reroutes_at_once(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin
):
    await start_orchestrator()
    options = await _recently_remediated(scene)
    await scene.request("new", **options)
    await scene.blocked("new", "RecentlyRemediated")

    preview = await plugin.json("explain", "rr", "new", "--if-unblocked")
    assert preview["bypassTimeBlocks"] is True and preview["decision"]["verdict"] == "Execute"
    (recent,) = [c for c in preview["checks"] if c["check"] == "RecentlyRemediated"]
    assert recent["matched"] and recent["bypassed"] and not recent["decides"]
    assert (await scene.status("new"))["phase"] == "Blocked", "a preview changes nothing"

    done = await plugin.json("unblock", "rr", "new", "--reason", "the fix did not hold")
    assert set(done) == ANNOTATED_KEYS
    assert done["action"] == "unblocked" and done["annotation"] == UNBLOCK
    value = json.loads((await scene.get("new"))["metadata"]["annotations"][UNBLOCK])
    assert value["by"] == "sandbox-admin" and value["reason"] == "the fix did not hold" and value["at"]
    assert value["via"] == done["identitySource"] == "SelfSubjectReview"
    await scene.phase("new", "Executing")

    again = await plugin("unblock", "rr", "new")
    assert "is not blocked (phase Executing)" in one_line_error(again)


async def test_status_lists_blocks_and_failed_executions_and_its_command_acknowledges(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin
):
    await start_orchestrator()
    await _failed_mid_run(scene)
    await scene.request("skipped", fingerprint_seed="skipped")
    await scene.phase("skipped", "Failed")
    await scene.request("elsewhere", target=("Deployment", "api", "default"), fingerprint_seed="e")
    await scene.phase("elsewhere", "Executing")
    await scene.request("waiting", target=("Deployment", "api", "default"), fingerprint_seed="w")
    await scene.blocked("waiting", "ResourceBusy")

    report = await plugin.json("status")
    assert set(report) == STATUS_KEYS and report["namespace"] == scene.namespace
    counts = {(p["phase"], p["reason"]): p["count"] for p in report["phases"]}
    assert counts == {
        ("Failed", "TaskFailed"): 1,
        ("Failed", "PreviousExecutionFailed"): 1,
        ("Executing", None): 1,
        ("Blocked", "ResourceBusy"): 1,
    }
    (blocked,) = report["blocked"]
    assert set(blocked) == BLOCKED_KEYS
    assert (blocked["name"], blocked["reason"], blocked["blockingWorkflowExecution"]) == (
        "waiting",
        "ResourceBusy",
        await scene.execution_of("elsewhere"),
    )
    (review,) = report["manualReview"]
    assert set(review) == FAILED_EXECUTION_KEYS
    old = await scene.execution_of("old")
    assert review["workflowExecution"] == old and review["target"] == "default/deployment/web"
    assert review["requests"] == [f"{scene.namespace}/skipped"]
    assert review["command"] == f"kubectl kubernaut ack wfe {old} -n {scene.namespace} --reason '...'"

    table = await plugin("status")
    assert table.code == 0 and review["command"] in table.stdout and "\x1b[" not in table.stdout

    argv = shlex.split(review["command"].replace("'...'", "'target checked'"))[2:]
    done = await plugin.json(*argv)
    assert done["action"] == "acknowledged" and done["resource"] == "WorkflowExecution"
    assert json.loads((await _get(scene, WFE, old))["metadata"]["annotations"][ACK])["reason"] == "target checked"
    assert (await plugin.json("status"))["manualReview"] == []
    await scene.request("after", fingerprint_seed="after")
    await scene.phase("after", "Executing")


async def test_status_across_namespaces(scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin):
    await start_orchestrator()
    await _busy(scene)
    everywhere = await plugin.json("status", "-A")
    assert everywhere["namespace"] is None
    here = await plugin.json("status")
    assert {("Executing", None)} == {(p["phase"], p["reason"]) for p in here["phases"]}
    assert sum(p["count"] for p in everywhere["phases"]) >= sum(p["count"] for p in here["phases"])


async def test_ack_wfe_refuses_what_needs_no_acknowledgement(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin
):
    await start_orchestrator()
    await _recently_remediated(scene)
    old = await scene.execution_of("old")
    assert "is not failed (phase Completed)" in one_line_error(await plugin("ack", "wfe", old, "--reason", "x"))
    await scene.request("second", target=("Deployment", "api", "default"), fingerprint_seed="second")
    await scene.phase("second", "Executing")
    await scene.fail("second", reason="ImagePullBackOff", was_execution_failure=False)
    await scene.phase("second", "Failed")
    second = await scene.execution_of("second")
    line = one_line_error(await plugin("ack", "wfe", second, "--reason", "x"))
    assert "wasExecutionFailure" in line and "nothing to acknowledge" in line
    assert ACK not in ((await _get(scene, WFE, second))["metadata"].get("annotations") or {})
    usage = await plugin("ack", "wfe", second)
    assert "--reason" in one_line_error(usage, code=2)


async def test_ack_chain_annotates_a_request_skipped_as_an_ineffective_chain(scene: Scene, plugin: Plugin):
    """The orchestrator's check 3 is played by the test here (the status it writes on a skip, SPEC 4.9)."""
    await scene.request("chained")
    fingerprint = (await scene.get("chained"))["spec"]["signalFingerprint"]
    await scene.kube.patch_status(
        RR,
        scene.namespace,
        "chained",
        {
            "phase": "Failed",
            "skipReason": "IneffectiveChain",
            "requiresManualReview": True,
            "ineffectiveCount": 3,
            "message": "3 remediations in a row did not hold",
        },
    )
    await scene.request("plain", fingerprint_seed="plain")
    assert "not part of an ineffective chain" in one_line_error(
        await plugin("ack", "chain", "rr", "plain", "--reason", "x")
    )

    (chain,) = (await plugin.json("status"))["manualReview"]
    assert set(chain) == CHAIN_KEYS
    assert (chain["request"], chain["fingerprint"], chain["ineffectiveCount"]) == ("chained", fingerprint, 3)
    argv = shlex.split(chain["command"].replace("'...'", "'leak fixed in v2'"))[2:]
    done = await plugin.json(*argv)
    assert done["action"] == "chain acknowledged" and done["annotation"] == CHAIN_ACK
    assert (
        json.loads((await scene.get("chained"))["metadata"]["annotations"][CHAIN_ACK])["reason"] == "leak fixed in v2"
    )
    assert (await plugin.json("status"))["manualReview"] == []


async def test_explain_json_shape_and_table(scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin):
    await start_orchestrator()
    await _busy(scene)
    await scene.request("new", fingerprint_seed="new")
    await scene.blocked("new", "ResourceBusy")
    report = await plugin.json("explain", "rr", "new")
    assert set(report) == EXPLAIN_KEYS and report["kind"] == "Explanation"
    assert set(report["request"]) == REQUEST_KEYS and set(report["settings"]) == SETTINGS_KEYS
    assert set(report["decision"]) == DECISION_KEYS
    for check in report["checks"]:
        assert set(check) == CHECK_KEYS
        assert all(isinstance(v, str | int | bool | type(None)) for v in check["facts"].values())
    (busy,) = [c for c in report["checks"] if c["check"] == "ResourceBusy"]
    old = f"{scene.namespace}/{await scene.execution_of('old')}"
    assert busy["decides"] and busy["facts"]["blockingWorkflowExecution"] == old
    assert report["decision"]["blockingWorkflowExecution"] == old

    table = await plugin("explain", "rr", "new")
    assert table.code == 0 and "\x1b[" not in table.stdout
    checks = table.stdout[table.stdout.index("CHECK") :]
    positions = [checks.index(check) for check in ROUTING_CHECKS]
    assert positions == sorted(positions)
    assert "Decision: Block ResourceBusy" in table.stdout and "The request's status agrees." in table.stdout


async def test_explain_settings_come_from_the_deployment_else_the_defaults(
    scene: Scene, plugin: Plugin, kube: KubeClient, sandbox: SandboxHandle
):
    await scene.request("new")
    env = {"KUBERNAUT_ORCHESTRATOR_RECENTLY_REMEDIATED_COOLDOWN": "20s", "KUBERNAUT_ORCHESTRATOR_BACKOFF_BASE": "bad"}
    bad = orchestrator_deployment(scene.namespace, env)
    bad["metadata"]["name"] = "bad"
    await kube.create(DEPLOYMENTS, bad)
    good = orchestrator_deployment(scene.namespace, {"KUBERNAUT_ORCHESTRATOR_RECENTLY_REMEDIATED_COOLDOWN": "20s"})
    good["metadata"]["name"] = "good"
    good["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "KUBERNAUT_ORCHESTRATOR_BACKOFF_MAX", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    )
    await kube.create(DEPLOYMENTS, good)

    settings = (await plugin.json("explain", "rr", "new", "--settings-from", f"{scene.namespace}/good"))["settings"]
    assert settings["source"] == "deployment" and settings["values"]["recentlyRemediatedCooldown"] == "20s"
    assert "KUBERNAUT_ORCHESTRATOR_BACKOFF_MAX" in settings["note"]
    settings = (await plugin.json("explain", "rr", "new", "--settings-from", f"{scene.namespace}/bad"))["settings"]
    assert settings["source"] == "defaults" and "KUBERNAUT_ORCHESTRATOR_BACKOFF_BASE" in settings["note"]
    assert settings["values"]["recentlyRemediatedCooldown"] == "5m0s"
    settings = (await plugin.json("explain", "rr", "new", "--settings-from", f"{scene.namespace}/none"))["settings"]
    assert settings["source"] == "defaults" and settings["note"] == f"no Deployment {scene.namespace}/none"
    table = await plugin("explain", "rr", "new", "--settings-from", f"{scene.namespace}/none")
    assert "settings: the defaults (no Deployment" in table.stdout

    sandbox.admin.fail_requests(code=403, count=1, verb="get", resource="deployments", user="bob")
    settings = (
        await plugin.json(
            "explain",
            "rr",
            "new",
            "--settings-from",
            f"{scene.namespace}/good",
            kubeconfig=sandbox.kubeconfig_for("bob"),
        )
    )["settings"]
    assert settings["source"] == "defaults" and settings["note"].startswith("you may not read Deployment")
    assert "NAMESPACE/DEPLOYMENT" in one_line_error(
        await plugin("explain", "rr", "new", "--settings-from", "nonsense"), code=2
    )


# -- errors -----------------------------------------------------------------------------------------------------
async def test_not_found_is_one_line(scene: Scene, plugin: Plugin):
    for argv in (
        ("explain", "rr", "missing"),
        ("unblock", "rr", "missing"),
        ("ack", "wfe", "missing", "--reason", "x"),
        ("ack", "chain", "rr", "missing", "--reason", "x"),
    ):
        line = one_line_error(await plugin(*argv))
        assert "'missing' not found in namespace" in line, line


async def test_no_cluster_is_one_line(plugin: Plugin, tmp_path):
    closed = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    for argv in (("status",), ("explain", "rr", "x"), ("unblock", "rr", "x")):
        line = one_line_error(await plugin(*argv, kubeconfig=closed))
        assert line.startswith("error: cannot reach the cluster at http://127.0.0.1:"), line
    line = one_line_error(await plugin("status", kubeconfig=tmp_path / "absent"))
    assert "does not exist" in line


async def test_forbidden_names_the_verb_and_resource(scene: Scene, plugin: Plugin, sandbox: SandboxHandle):
    await scene.request("new")
    bob = sandbox.kubeconfig_for("bob")
    sandbox.admin.fail_requests(code=403, count=1, verb="get", resource="remediationrequests", user="bob")
    line = one_line_error(await plugin("explain", "rr", "new", kubeconfig=bob))
    assert line.startswith(
        f"error: forbidden: you may not get remediationrequests.kubernaut.ai in namespace '{scene.namespace}'"
    )

    await scene.kube.patch_status(RR, scene.namespace, "new", {"phase": "Blocked", "blockReason": "ResourceBusy"})
    sandbox.admin.fail_requests(code=403, count=1, verb="patch", resource="remediationrequests", user="bob")
    line = one_line_error(await plugin("unblock", "rr", "new", kubeconfig=bob))
    assert line.startswith("error: forbidden: you may not patch remediationrequests.kubernaut.ai in namespace"), line

    sandbox.admin.fail_requests(code=403, count=1, verb="list", resource="workflowexecutions", namespace="", user="bob")
    report = await plugin.json("status", kubeconfig=bob)
    assert report["notes"] and "only those in" in report["notes"][0]


async def test_usage_errors_exit_2(plugin: Plugin):
    for argv, expected in (
        (("explain", "wfe", "x"), "expected rr"),
        (("status", "-A", "-o", "yaml"), "invalid choice"),
        (("ack", "chain", "x", "--reason", "r"), "ack chain rr NAME"),
        (("explain", "rr", "x", "-A"), "-A/--all-namespaces applies to status only"),
    ):
        assert expected in one_line_error(await plugin(*argv), code=2)


# -- how users run it ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
async def test_kubectl_finds_the_plugin_on_the_path(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin
):
    await start_orchestrator()
    await _busy(scene)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": str(plugin.kubeconfig)}
    done = subprocess.run(
        ["kubectl", "kubernaut", "status", "-n", scene.namespace, "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["phases"] == [{"phase": "Executing", "reason": None, "count": 1}]


async def _get(scene: Scene, resource: Any, name: str) -> dict[str, Any]:
    return await scene.kube.get(resource, scene.namespace, name)


async def test_who_is_the_servers_answer_else_the_kubeconfigs_user(
    scene: Scene, plugin: Plugin, sandbox: SandboxHandle
):
    """No orchestrator here: the test writes the statuses it would write."""
    await scene.kube.create(WFE, factories.workflow_execution("old", scene.namespace))
    details = {"reason": "TaskFailed", "message": "failed in the test", "wasExecutionFailure": True}
    await scene.kube.patch_status(WFE, scene.namespace, "old", {"phase": "Failed", "failureDetails": details})
    await scene.request("blocked", fingerprint_seed="blocked")
    await scene.kube.patch_status(RR, scene.namespace, "blocked", {"phase": "Blocked", "blockReason": "ResourceBusy"})
    alice = sandbox.kubeconfig_for("alice@example.com")
    done = await plugin.json("ack", "wfe", "old", "--reason", "r", kubeconfig=alice)
    assert (done["by"], done["identitySource"]) == ("alice@example.com", "SelfSubjectReview")

    # A server without SelfSubjectReview (before 1.28): the kubeconfig context's user, which names it so.
    sandbox.admin.fail_requests(code=404, count=1, resource="selfsubjectreviews", user="alice@example.com")
    done = await plugin.json("unblock", "rr", "blocked", kubeconfig=alice)
    assert (done["by"], done["identitySource"]) == ("alice@example.com", "kubeconfig")
    assert json.loads(done["value"])["via"] == "kubeconfig"


async def test_an_unblocked_request_is_explained_as_the_orchestrator_routes_it(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin
):
    """Unblocked while an event-based block holds it: explain bypasses the time-based checks as the orchestrator will
    when the block's cause ends - here RecentlyRemediated, which the run that ends would otherwise raise."""
    orchestrator = await start_orchestrator()
    await _busy(scene)
    await scene.request("new", fingerprint_seed="new")
    await scene.blocked("new", "ResourceBusy")
    await plugin.json("unblock", "rr", "new", "--reason", "run it as soon as the target is free")
    report = await plugin.json("explain", "rr", "new")
    assert report["bypassTimeBlocks"] is True and report["request"]["unblockAnnotation"]
    assert report["decision"]["reason"] == "ResourceBusy" and report["agreesWithStatus"] is True

    await orchestrator.shutdown()
    await scene.complete("old")
    report = await plugin.json("explain", "rr", "new")
    (recent,) = [c for c in report["checks"] if c["check"] == "RecentlyRemediated"]
    assert recent["matched"] and recent["bypassed"]
    assert report["decision"]["verdict"] == "Execute" and report["agreesWithStatus"] is False
    assert "status says Blocked (ResourceBusy)" in report["difference"]
    await start_orchestrator()
    await scene.phase("new", "Executing")


async def test_an_annotation_lands_on_the_version_checked_and_a_conflict_is_checked_again(
    scene: Scene, plugin: Plugin, sandbox: SandboxHandle, kube: KubeClient
):
    await scene.request("new")
    await scene.kube.patch_status(RR, scene.namespace, "new", {"phase": "Blocked", "blockReason": "ResourceBusy"})
    sandbox.admin.fail_requests(code=409, count=1, verb="patch", resource="remediationrequests", user="carol")
    done = await plugin.json("unblock", "rr", "new", kubeconfig=sandbox.kubeconfig_for("carol"))
    assert done["by"] == "carol"
    patches = [r for r in sandbox.admin.audit(user="carol") if r.verb == "patch"]
    assert [r.code for r in patches] == [409, 200], "re-read, re-checked, then written"
    gets = [r for r in sandbox.admin.audit(user="carol") if r.verb == "get" and r.resource == "remediationrequests"]
    assert len(gets) == 2

    watching = orchestrator_deployment(scene.namespace, {"KUBERNAUT_ORCHESTRATOR_WATCHED_NAMESPACES": "elsewhere"})
    watching["metadata"]["name"] = "watching-elsewhere"
    await kube.create(DEPLOYMENTS, watching)
    report = await plugin.json("explain", "rr", "new", "--settings-from", f"{scene.namespace}/watching-elsewhere")
    assert any("watches only elsewhere" in note for note in report["notes"])


async def test_context_and_its_namespace_are_taken_as_kubectl_takes_them(
    scene: Scene, plugin: Plugin, sandbox: SandboxHandle, tmp_path
):
    await scene.request("here")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "down", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}},
            {"name": "sandbox", "cluster": {"server": sandbox.url}},
        ],
        "users": [{"name": "dora", "user": {"token": "dora"}}],
        "contexts": [
            {"name": "down", "context": {"cluster": "down", "user": "dora"}},
            {"name": "work", "context": {"cluster": "sandbox", "user": "dora", "namespace": scene.namespace}},
        ],
        "current-context": "down",
    }
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(json.dumps({**config, "contexts": config["contexts"][:1], "clusters": config["clusters"][:1]}))
    second.write_text(json.dumps({**config, "contexts": config["contexts"][1:], "clusters": config["clusters"][1:]}))
    env = {**os.environ, "KUBECONFIG": f"{first}{os.pathsep}{second}"}  # merged as kubectl merges them

    def run(*args: str) -> Ran:
        done = subprocess.run(
            [str(BIN / "kubectl-kubernaut"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    assert "cannot reach the cluster" in one_line_error(await asyncio.to_thread(run, "status"))
    report = (await asyncio.to_thread(run, "status", "--context", "work", "-o", "json")).json
    assert report["namespace"] == scene.namespace and report["phases"] == [
        {"phase": "Pending", "reason": None, "count": 1}
    ]
    assert "context" in one_line_error(await asyncio.to_thread(run, "status", "--context", "nope"))


async def test_explain_predicts_an_ineffective_chain_and_its_acknowledgement_clears_it(
    scene: Scene, start_orchestrator: StartOrchestrator, plugin: Plugin, kube: KubeClient
):
    """Check 3 (SPEC 4.9) with a threshold of 1: a completion followed by the same alert within the window."""
    deployment = orchestrator_deployment(
        scene.namespace, watching(scene.namespace, KUBERNAUT_ORCHESTRATOR_INEFFECTIVE_CHAIN_THRESHOLD="1")
    )
    deployment["metadata"]["name"] = "chain-orchestrator"
    await kube.create(DEPLOYMENTS, deployment)
    settings = ("--settings-from", f"{scene.namespace}/chain-orchestrator")
    orchestrator = await start_orchestrator(ineffective_chain_threshold=1)
    await _recently_remediated(scene)
    await orchestrator.shutdown()
    await scene.request("again", fingerprint_seed="old")

    before = await plugin.json("explain", "rr", "again", *settings)
    (chain,) = [c for c in before["checks"] if c["check"] == "IneffectiveChain"]
    assert chain["decides"] and before["decision"]["verdict"] == "Skip"
    orchestrator = await start_orchestrator(ineffective_chain_threshold=1)
    status = await scene.phase("again", "Failed")
    assert outcome_of(status) == predicted(before["decision"]) == ("Failed", "IneffectiveChain", None)

    (waiting,) = (await plugin.json("status"))["manualReview"]
    assert (waiting["kind"], waiting["request"]) == ("IneffectiveChain", "again")
    argv = shlex.split(waiting["command"].replace("'...'", "'looked at it'"))[2:]
    assert (await plugin.json(*argv))["annotation"] == CHAIN_ACK
    assert (await plugin.json("status"))["manualReview"] == []
    await orchestrator.shutdown()
    await scene.request("after-ack", fingerprint_seed="old")
    after = await plugin.json("explain", "rr", "after-ack", *settings)
    (chain,) = [c for c in after["checks"] if c["check"] == "IneffectiveChain"]
    assert not chain["matched"], chain["facts"]
    await start_orchestrator(ineffective_chain_threshold=1)
    status = await scene.until("after-ack", routed, "routed")
    assert outcome_of(status) == predicted(after["decision"])
