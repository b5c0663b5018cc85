"""The executor under real-world faults (issue 18 items 3, 5, 7, 8; issue 19 item 5), over HTTP against the sandbox:

- a run Tekton never starts (no Tekton at all) or never finishes is cancelled at the execution's own deadline and
  the execution fails DeadlineExceeded, so its target is free again;
- a PipelineRun at the lock name that the executor did not create is never touched;
- the first failure to create the PipelineRun shows on the execution at once, and the retries go on;
- the allowlists refuse a bundle or ServiceAccount outside them, naming the value and the setting;
- a run whose completion time is before its start time is recorded with duration 0.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from executor.pipelinerun import LABEL_WORKFLOW_EXECUTION, build_pipeline_run, pipeline_run_name
from sandbox.stack import EXECUTION_NAMESPACE, USERS
from sandbox.testing import SandboxHandle
from shared.kubetime import format_time, parse_time
from shared.models import PipelineRun, WorkflowExecution
from shared.runtime.client import ApiError
from tests.deploy.manifests import built
from tests.deploy.rbac import allows, permissions_by_user
from tests.integration.executor.conftest import Scene, StartExecutor, StartSimulator
from tests.integration.helpers import NAMESPACES, delete_namespace, eventually

PR = PipelineRun.RESOURCE
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def executor_writes_to_runs(scene: Scene) -> list[tuple[str, str]]:
    """(verb, name) of every write the executor sent to PipelineRuns."""
    return [
        (r.verb, r.name)
        for r in scene.sandbox.admin.audit(user=USERS["executor"])
        if r.resource == "pipelineruns" and r.verb in WRITES and r.namespace == scene.runs_namespace
    ]


# -- the executor's own deadline (item 3) ---------------------------------------------------------------------
async def test_a_run_tekton_never_starts_is_cancelled_at_the_deadline_and_frees_its_target(
    scene: Scene, start_executor: StartExecutor
):
    """No Tekton at all: before this fix the execution stayed Running for good and the target stayed busy."""
    executor = await start_executor(timeout_grace=0)
    wfe = await scene.execution("web", executionConfig={"timeout": "1s"})
    status = await scene.phase("web", "Failed")
    details = status["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("DeadlineExceeded", False)
    run = await scene.run(scene.target("web"))
    assert run["spec"]["status"] == "Cancelled", "Tekton's way to stop a run"
    assert f"{scene.runs_namespace}/{run['metadata']['name']}" in details["message"]
    assert "did not start" in details["message"] and "1s" in details["message"]
    assert parse_time(details["failedAt"]) >= parse_time(wfe["metadata"]["creationTimestamp"]) + timedelta(seconds=1)
    assert executor.metric("failures_total", reason="DeadlineExceeded", was_execution_failure="false") == 1
    # The cancel is a PATCH of the run by the executor's user, a call the shipped Role allows.
    cancels = [r for r in executor_writes_to_runs(scene) if r[0] == "patch"]
    assert cancels == [("patch", run["metadata"]["name"])]
    granted = permissions_by_user(built("kind"))[USERS["executor"]]
    assert allows(
        granted,
        group="tekton.dev",
        resource="pipelineruns",
        subresource="",
        verb="patch",
        namespace=EXECUTION_NAMESPACE,
    )
    # The lock is no longer held: the next execution on the target takes the cancelled run's name over.
    await scene.execution("web-2", target=scene.target("web"))
    await scene.phase("web-2", "Running")
    assert (await scene.run(scene.target("web")))["metadata"]["annotations"][
        "kubernaut.ai/workflow-execution"
    ] == f"{scene.namespace}/web-2"


async def test_an_execution_past_its_deadline_before_the_executor_saw_it_creates_no_run(
    scene: Scene, start_executor: StartExecutor
):
    """The executor was down past the execution's whole timeout: it fails the execution at once, runs nothing."""
    wfe = await scene.execution("web", executionConfig={"timeout": "500ms"})
    deadline = parse_time(wfe["metadata"]["creationTimestamp"]) + timedelta(milliseconds=500)
    await eventually(lambda: datetime.now(UTC) > deadline + timedelta(seconds=1) or None, what="the deadline to pass")
    await start_executor(timeout_grace=0)
    details = (await scene.phase("web", "Failed"))["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("DeadlineExceeded", False)
    assert "did not start" in details["message"] and "no PipelineRun was created" in details["message"]
    assert executor_writes_to_runs(scene) == []


async def test_a_run_that_ended_before_the_deadline_is_recorded_as_it_ended_even_when_seen_after_it(
    scene: Scene, start_executor: StartExecutor
):
    """Its run was created and ended, but the execution's record of it was lost (the executor died between the
    create and the status write) and the deadline has passed since: the run's own end is what happened."""
    wfe = await scene.execution("web", executionConfig={"timeout": "500ms"})
    run = build_pipeline_run(
        WorkflowExecution.from_k8s(wfe), namespace=scene.runs_namespace, default_service_account="runner"
    )
    created = await scene.kube.create(PR, run)
    start = parse_time(created["metadata"]["creationTimestamp"])
    done = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "Tasks Completed: 1"}
    ended = {
        "startTime": format_time(start),
        "completionTime": format_time(start + timedelta(milliseconds=200)),
        "conditions": [done],
        "childReferences": [{"name": "t", "kind": "TaskRun"}],
    }
    await scene.kube.patch_status(PR, scene.runs_namespace, run["metadata"]["name"], ended)
    deadline = parse_time(wfe["metadata"]["creationTimestamp"]) + timedelta(milliseconds=500)
    await eventually(lambda: datetime.now(UTC) > deadline + timedelta(seconds=1) or None, what="the deadline to pass")
    await start_executor(timeout_grace=0)
    status = await scene.phase("web", "Completed")
    assert status["duration"] == "200ms"
    assert executor_writes_to_runs(scene) == [], "not cancelled: it had ended"


async def test_a_run_that_never_finishes_is_cancelled_and_counts_as_run(
    scene: Scene, start_executor: StartExecutor, start_tekton: StartSimulator
):
    """Tekton started it (child TaskRuns exist) and never ends it: the workflow may have changed the cluster."""
    await start_tekton()
    await start_executor(timeout_grace=0)
    await scene.execution("web", sim={"outcome": "Hang"}, executionConfig={"timeout": "1s"})
    status = await scene.phase("web", "Failed")
    details = status["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("DeadlineExceeded", True)
    assert "did not finish" in details["message"]

    async def cancelled_by_tekton() -> dict[str, Any] | None:
        run = await scene.run(scene.target("web"))
        conditions = (run.get("status") or {}).get("conditions") or []
        return run if any(c.get("reason") == "Cancelled" and c.get("status") == "False" for c in conditions) else None

    await eventually(cancelled_by_tekton, what="Tekton to end the cancelled run")
    assert (await scene.status("web"))["failureDetails"] == details, "the execution's record stays as written"


async def test_tekton_s_own_timeout_still_wins_within_the_grace(scene: Scene, start_executor, start_tekton):
    """With the grace (default 10 s), Tekton's timeouts.pipeline ends the run first and its details are kept."""
    await start_tekton()
    await start_executor()
    await scene.execution("web", sim={"duration": "30", "exit_code": "143"}, executionConfig={"timeout": "300ms"})
    details = (await scene.phase("web", "Failed"))["failureDetails"]
    assert (details["reason"], details["failedTaskName"], details["exitCode"]) == ("DeadlineExceeded", "task-2", 143)
    assert "cancel" not in details["message"]


# -- foreign runs (item 5) ------------------------------------------------------------------------------------
async def test_a_foreign_run_at_the_lock_name_is_never_touched(
    scene: Scene, start_executor: StartExecutor, start_tekton: StartSimulator
):
    await start_tekton()
    await start_executor()
    target = scene.target("web")
    name = pipeline_run_name(target)
    foreign = await scene.kube.create(
        PR,
        {
            "apiVersion": PR.api_version,
            "kind": PR.kind,
            "metadata": {"name": name, "labels": {LABEL_WORKFLOW_EXECUTION: "someone-else"}},
            "spec": {"params": [{"name": "SIM_OUTCOME", "value": "Hang"}]},
        },
        scene.runs_namespace,
    )
    await scene.execution("web")
    status = await scene.phase("web", "Failed")
    details = status["failureDetails"]
    assert (details["reason"], details["wasExecutionFailure"]) == ("Unknown", False)
    assert f"{scene.runs_namespace}/{name}" in details["message"] and "left alone" in details["message"]
    await scene.kube.delete(scene.RESOURCE, scene.namespace, "web")  # the finalizer leaves it alone too

    async def gone() -> bool:
        try:
            await scene.get("web")
        except ApiError as error:
            return error.not_found
        return False

    await eventually(gone, what="the execution to be deleted")
    run = await scene.run(target)
    assert run["metadata"]["uid"] == foreign["metadata"]["uid"]
    assert "status" not in run["spec"]
    assert executor_writes_to_runs(scene) == [("create", "")], "one refused create (409); no delete, no patch"


# -- the first failure to start shows at once (item 7) ---------------------------------------------------------
async def test_the_first_failure_to_create_the_run_shows_on_the_execution_and_retries_go_on(
    scene: Scene, start_executor: StartExecutor, start_tekton: StartSimulator
):
    missing = f"{scene.runs_namespace}-later"  # not there yet: creates answer 404
    executor = await start_executor(execution_namespace=missing)
    await scene.execution("web")
    status = await scene.until(
        "web",
        lambda s: any(c["type"] == "PipelineRunCreated" and c["status"] == "False" for c in s.get("conditions") or []),
        "the PipelineRunCreated=False condition",
    )
    (condition,) = [c for c in status["conditions"] if c["type"] == "PipelineRunCreated"]
    assert condition["reason"] == "CreateFailed"
    assert "404" in condition["message"] and missing in condition["message"]
    assert status["phase"] == "Pending"
    await scene.has_events("web", "PipelineRunCreateFailed")
    assert executor.metric("pipelinerun_creations_total") == 0
    await scene.kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": missing}})
    try:
        await scene.phase("web", "Running", timeout=30)
        conditions = {c["type"]: c["status"] for c in (await scene.status("web"))["conditions"]}
        assert conditions["PipelineRunCreated"] == "True"
    finally:
        await delete_namespace(scene.kube, missing)


# -- allowlists (item 8) ---------------------------------------------------------------------------------------
async def test_a_bundle_or_service_account_outside_the_allowlists_is_refused_naming_the_setting(
    scene: Scene, start_executor: StartExecutor, start_tekton: StartSimulator
):
    await start_tekton()
    executor = await start_executor(
        allowed_bundles=["registry.example.com/workflows/*"], allowed_service_accounts=["kubernaut-workflow-runner"]
    )
    bad_bundle = "ghcr.io/attacker/anything:latest"
    await scene.execution("bundle", workflowRef={"workflowId": "x", "executionBundle": bad_bundle})
    await scene.execution(
        "nested", workflowRef={"workflowId": "x", "executionBundle": "registry.example.com/workflows/a/b:1"}
    )
    await scene.execution("account", executionConfig={"serviceAccountName": "default"})
    await scene.execution("good")
    for name, value, setting in [
        ("bundle", bad_bundle, "KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES"),
        ("nested", "registry.example.com/workflows/a/b:1", "KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES"),
        ("account", "default", "KUBERNAUT_EXECUTOR_ALLOWED_SERVICE_ACCOUNTS"),
    ]:
        details = (await scene.phase(name, "Failed"))["failureDetails"]
        assert (details["reason"], details["wasExecutionFailure"]) == ("ConfigurationError", False)
        assert repr(value) in details["message"] and setting in details["message"]
    await scene.phase("good", "Completed")
    assert [r.code for r in scene.creates()] == [201], "only the good execution got a PipelineRun"
    assert [r["metadata"]["name"] for r in await scene.runs()] == [pipeline_run_name(scene.target("good"))]
    assert executor.metric("failures_total", reason="ConfigurationError", was_execution_failure="false") == 3


# -- what a real Tekton may write (issue 19 item 5) -------------------------------------------------------------
async def test_a_completion_before_the_recorded_start_is_recorded_with_duration_zero(
    scene: Scene, sandbox: SandboxHandle, start_executor: StartExecutor
):
    """Two Tekton replicas with skewed clocks: the start time moves after the executor recorded it, then the
    completion lands before that start. The success path raised 'negative duration' and looped."""
    await start_executor()
    await scene.execution("web")
    await scene.phase("web", "Running")
    target = scene.target("web")
    name = pipeline_run_name(target)
    run = await scene.run(target)
    start = parse_time(run["metadata"]["creationTimestamp"]) + timedelta(seconds=5)
    tekton = scene.kube  # writing as Tekton would
    running = {"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": ""}
    await tekton.patch_status(
        PR,
        scene.runs_namespace,
        name,
        {
            "startTime": format_time(start),
            "conditions": [running],
            "childReferences": [{"name": "t", "kind": "TaskRun"}],
        },
    )
    await scene.until("web", lambda s: s.get("startTime") == format_time(start), "the start time recorded")
    done = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "Tasks Completed: 1"}
    await tekton.patch_status(
        PR,
        scene.runs_namespace,
        name,
        {
            "startTime": format_time(start + timedelta(seconds=3)),
            "completionTime": format_time(start - timedelta(milliseconds=640)),
            "conditions": [done],
        },
    )
    status = await scene.phase("web", "Completed")
    assert status["duration"] == "0s"
    assert status["startTime"] == format_time(start), "the start first recorded stays"
    assert status["completionTime"] == format_time(start - timedelta(milliseconds=640))


async def test_the_executor_warns_at_start_up_when_any_bundle_may_run(start_executor: StartExecutor):
    with structlog.testing.capture_logs() as unrestricted:
        await start_executor()
    with structlog.testing.capture_logs() as restricted:
        await start_executor(allowed_bundles=["registry.example.com/workflows/*"])
    warnings = [e for e in unrestricted if e["event"] == "executor.bundles_unrestricted"]
    assert warnings and warnings[0]["log_level"] == "warning"
    assert warnings[0]["setting"] == "KUBERNAUT_EXECUTOR_ALLOWED_BUNDLES"
    assert not [e for e in restricted if e["event"] == "executor.bundles_unrestricted"]
