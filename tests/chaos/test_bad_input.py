"""Bad input next to good (SPEC 4.1, 5): requests the API accepts that cannot be routed, and, with the sandbox's
schema validation off, objects that break the schema. Each gets a clear status naming the field (or is skipped with
one logged reason) and one Event; neither process crash-loops; the good requests complete as if nothing happened.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from sandbox.stack import EXECUTION_NAMESPACE, SYSTEM_NAMESPACE
from sandbox.testing import sandbox_process
from shared.apiresource import EVENTS
from shared.models import RemediationRequest, WorkflowExecution
from shared.runtime.client import KubeClient
from tests import factories
from tests.chaos.system import System
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

RR = RemediationRequest.RESOURCE
WFE = WorkflowExecution.RESOURCE
NAMESPACE = "bad-input"
Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return edit


_DELETE = object()

# name -> (edit of a valid request, the field its message must name)
ACCEPTED_BUT_UNROUTABLE: dict[str, tuple[Edit, str]] = {
    "bad-bundle": (_set("spec.workflowRef.executionBundle", "Not A Bundle"), "spec.workflowRef.executionBundle"),
    "bad-kind": (_set("spec.targetResource.kind", "Deploy-ment"), "spec.targetResource.kind"),
    "bad-target-name": (_set("spec.targetResource.name", "web/0"), "spec.targetResource.name"),
    "reserved-parameter": (_set("spec.parameters", {"TARGET_RESOURCE": "x"}), "spec.parameters.TARGET_RESOURCE"),
    "bad-service-account": (
        _set("spec.workflowRef.serviceAccountName", "Not_Valid"),
        "spec.workflowRef.serviceAccountName",
    ),
    "zero-timeout": (_set("spec.timeouts", {"executing": "0s"}), "spec.timeouts.executing"),
    # Issue 17.4: schema-valid, beyond Go's largest duration (one overflowed the parser, one the deadline).
    "huge-timeout": (_set("spec.timeouts", {"executing": "9999999999999h"}), "spec.timeouts.executing"),
    "long-timeout": (_set("spec.timeouts", {"executing": "99999999h"}), "spec.timeouts.executing"),
}
SCHEMA_BREAKING: dict[str, tuple[Edit, str]] = {
    "bad-fingerprint": (_set("spec.signalFingerprint", "not-a-fingerprint"), "spec.signalFingerprint"),
    "target-as-string": (_set("spec.targetResource", "Deployment/web"), "spec.targetResource"),
    "no-workflow": (_set("spec.workflowRef", _DELETE), "spec.workflowRef"),
    "spec-as-string": (_set("spec", "garbage"), "spec"),
    "parameter-as-number": (_set("spec.parameters", {"REPLICAS": 5}), "spec.parameters.REPLICAS"),
}
# WorkflowExecutions a broken producer wrote (no owner): the executor must refuse them clearly.
BAD_EXECUTIONS: dict[str, tuple[Edit, str, bool]] = {  # edit, field, breaks the schema
    "wfe-no-target": (_set("spec.targetResource", _DELETE), "spec.targetResource", True),
    "wfe-workflow-as-string": (_set("spec.workflowRef", "restart"), "spec.workflowRef", True),
    "wfe-not-a-target": (_set("spec.targetResource", "not a target"), "spec.targetResource", False),
    "wfe-huge-timeout": (
        _set("spec.executionConfig", {"timeout": "9999999999999h"}),
        "spec.executionConfig.timeout",
        False,
    ),
}
GOOD = 12


def _request(name: str, index: int) -> dict[str, Any]:
    return factories.remediation_request(
        name,
        NAMESPACE,
        target=("Deployment", f"app-{index}", "shop"),
        fingerprint_seed=name,
        parameters={"SIM_DURATION": "0.3"},
    )


def _log_lines(path: Path, event: str) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            lines.append(entry)
    return lines


async def test_bad_input_gets_a_clear_answer_and_good_input_is_unaffected(tmp_path: Path):
    with sandbox_process(namespaces=(SYSTEM_NAMESPACE, EXECUTION_NAMESPACE, NAMESPACE)) as sandbox:
        system = System(sandbox, tmp_path, [NAMESPACE], replicas=1)
        kube = await KubeClient.connect(sandbox.kubeconfig_for("chaos-load"), user_agent="chaos-load")
        try:
            await system.start()
            good = [f"good-{index:02d}" for index in range(GOOD)]
            for index, name in enumerate(good[: GOOD // 2]):
                await kube.create(RR, _request(name, index))
            for index, (name, (edit, _)) in enumerate(ACCEPTED_BUT_UNROUTABLE.items()):
                body = _request(name, 100 + index)
                edit(body)
                await kube.create(RR, body)
            await sandbox.admin.aio.set_validation(False)
            for index, (name, (edit, _)) in enumerate(SCHEMA_BREAKING.items()):
                body = _request(name, 200 + index)
                edit(body)
                await kube.create(RR, body)
            for index, (name, (edit, _, _)) in enumerate(BAD_EXECUTIONS.items()):
                body = copy.deepcopy(factories.workflow_execution(name, NAMESPACE, target=f"shop/deployment/w-{index}"))
                edit(body)
                await kube.create(WFE, body)
            await sandbox.admin.aio.set_validation(True)
            for index, name in enumerate(good[GOOD // 2 :], start=GOOD // 2):
                await kube.create(RR, _request(name, index))

            async def ended(resource: Any, names: list[str]) -> dict[str, dict[str, Any]] | None:
                items = {i["metadata"]["name"]: i for i in (await kube.list(resource, NAMESPACE))["items"]}
                done = {n: items[n] for n in names if (items.get(n, {}).get("status") or {}).get("phase")}
                return (
                    done
                    if len(done) == len(names)
                    and all(d["status"]["phase"] in ("Completed", "Failed") for d in done.values())
                    else None
                )

            bad_requests = [*ACCEPTED_BUT_UNROUTABLE, *SCHEMA_BREAKING]
            requests = await eventually(lambda: ended(RR, [*good, *bad_requests]), timeout=60, what="every RR ended")
            executions = await eventually(lambda: ended(WFE, list(BAD_EXECUTIONS)), timeout=30, what="bad WFEs")

            async def events_for(names: list[str]) -> dict[str, list[dict[str, Any]]] | None:
                items = (await kube.list(EVENTS, NAMESPACE))["items"]
                found = {n: [e for e in items if e["involvedObject"].get("name") == n] for n in names}
                return found if all(found.values()) else None

            events = await eventually(lambda: events_for([*bad_requests, *BAD_EXECUTIONS]), what="their Events")
            components = {c.name: c for c in system.components}
            starts = {name: c.starts for name, c in components.items()}
            running = {name: c.running for name, c in components.items()}
        finally:
            stop_codes = await system.stop()
            await kube.close()

    problems: list[str] = []
    for name in good:
        status = requests[name]["status"]
        if (status["phase"], status.get("outcome")) != ("Completed", "Remediated"):
            problems.append(f"good {name} ended {status['phase']}: {status.get('message')}")
    orchestrator_log = system.orchestrators[0].log_path
    invalid_logged = Counter(entry.get("key") for entry in _log_lines(orchestrator_log, "rr.invalid"))
    for name, (_, field) in [*ACCEPTED_BUT_UNROUTABLE.items(), *SCHEMA_BREAKING.items()]:
        status = requests[name]["status"]
        reason = "InvalidSpec" if name in ACCEPTED_BUT_UNROUTABLE else "InvalidObject"
        if (status["phase"], status.get("failurePhase"), status.get("failureReason")) != ("Failed", "Routing", reason):
            problems.append(f"{name}: {status['phase']}/{status.get('failurePhase')}/{status.get('failureReason')}")
        if field not in (status.get("message") or ""):
            problems.append(f"{name}: the message does not name {field}: {status.get('message')!r}")
        warnings = [e for e in events[name] if (e["type"], e["reason"]) == ("Warning", "Failed")]
        if len(warnings) != 1 or warnings[0].get("count", 1) != 1 or field not in warnings[0]["message"]:
            problems.append(f"{name}: expected one Warning Failed Event naming {field}, got {events[name]}")
        if name in SCHEMA_BREAKING and invalid_logged[f"{NAMESPACE}/{name}"] != 1:
            problems.append(f"{name}: logged rr.invalid {invalid_logged[f'{NAMESPACE}/{name}']} times")
    executor_log = system.executors[0].log_path
    wfe_invalid_logged = Counter(entry.get("key") for entry in _log_lines(executor_log, "wfe.invalid"))
    for name, (_, field, breaks_schema) in BAD_EXECUTIONS.items():
        status = executions[name]["status"]
        details = status.get("failureDetails") or {}
        if (status["phase"], details.get("reason"), details.get("wasExecutionFailure")) != (
            "Failed",
            "ConfigurationError",
            False,
        ):
            problems.append(f"{name}: {status['phase']}/{details}")
        if field not in (details.get("message") or ""):
            problems.append(f"{name}: the message does not name {field}: {details.get('message')!r}")
        failed = [e for e in events[name] if (e["type"], e["reason"]) == ("Warning", "WorkflowFailed")]
        if len(failed) != 1 or failed[0].get("count", 1) != 1:
            problems.append(f"{name}: expected one WorkflowFailed Event, got {events[name]}")
        if breaks_schema and wfe_invalid_logged[f"{NAMESPACE}/{name}"] != 1:
            problems.append(f"{name}: logged wfe.invalid {wfe_invalid_logged[f'{NAMESPACE}/{name}']} times")
    if system.exits or set(starts.values()) != {1} or not all(running.values()):
        problems.append(f"processes: exits {system.exits}, starts {starts}, running {running}")
    if set(stop_codes.values()) != {0}:
        problems.append(f"exit codes on SIGTERM: {stop_codes}")
    assert not problems, "\n".join(problems)
