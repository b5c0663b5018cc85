"""`python -m sandbox demo` (`make demo`): the whole control plane on this machine, no cluster needed.

It starts the sandbox API server (with Tekton's CRDs, as a cluster with Tekton installed), applies our CRDs and
namespaces from manifests/ through the API as `kubectl apply` would, starts the orchestrator, the executor and the
Tekton simulator as three processes (each as its own ServiceAccount user, leader election on, as deployed), plays
examples/demo/scenario.yaml while printing the request table live from a watch (like `kubectl get rr -w`), and
ends with a summary table and the blocking metrics scraped from the orchestrator's /metrics.

Exit status: 0 when every request went and ended as the scenario expects and the metrics agree, 1 when not (the
summary says which), 2 for a scenario that cannot be played, 130 after Ctrl-C (every child process is stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml

from orchestrator.metrics import PREFIX as ORCHESTRATOR_PREFIX
from sandbox.scenario import (
    REPOSITORY,
    SCENARIO,
    Observed,
    Request,
    Samples,
    Scenario,
    ScenarioError,
    check_metrics,
    check_requests,
    load_scenario,
    notifications,
    play,
    settled,
)
from sandbox.server import DEFAULT_CRDS
from sandbox.stack import SYSTEM_NAMESPACE, Component, ProcessFailed, Stack
from sandbox.testing import SandboxHandle, running_sandbox
from shared.apiresource import LEASES, NAMESPACES, ApiResource
from shared.kubetime import parse_time
from shared.models import BlockReason, NotificationType, SkipReason
from shared.runtime.client import ApiError, KubeClient
from shared.runtime.logging import configure_logging
from shared.runtime.store import KubeDict, section

MANIFESTS: Final = REPOSITORY / "manifests"
TEKTON_CRDS: Final = DEFAULT_CRDS[1]
CRDS: Final = ApiResource(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)
# What the demo applies: our CRDs, the namespaces the processes use and their Leases, which they may not create
# (RBAC and Deployments need a real cluster).
APPLIED: Final = (
    (MANIFESTS / "crds", {"CustomResourceDefinition"}),
    (MANIFESTS / "common" / "namespace.yaml", {"Namespace"}),
    (MANIFESTS / "common" / "workflows.yaml", {"Namespace"}),
    (MANIFESTS / "common" / "rbac-leader-election.yaml", {"Lease"}),
)
SERVED: Final = {"CustomResourceDefinition": CRDS, "Namespace": NAMESPACES, "Lease": LEASES}
DEPLOYMENTS: Final = ApiResource("apps", "v1", "Deployment", "deployments")
RR_CRD: Final = MANIFESTS / "crds" / "remediationrequests.kubernaut.ai.yaml"

Say = Callable[[str], None]


def _say(line: str = "") -> None:
    print(line, flush=True)


# -- the system -------------------------------------------------------------------------------------------------
def documents(path: Path) -> list[KubeDict]:
    """The YAML documents of a file, or of every *.yaml file in a directory (sorted)."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return [doc for file in files for doc in yaml.safe_load_all(file.read_text()) if isinstance(doc, dict)]


async def apply(kube: KubeClient, objects: Iterable[KubeDict], say: Say) -> None:
    """Create each object (unchanged if it exists), printed as kubectl prints it; wait for CRDs to be Established."""
    for obj in objects:
        resource = SERVED[obj["kind"]]
        kind = f"{resource.kind.lower()}.{resource.group}" if resource.group else resource.kind.lower()
        label = f"{kind}/{obj['metadata']['name']}"
        try:
            await kube.create(resource, obj)
            say(f"{label} created")
        except ApiError as error:
            if not error.already_exists:
                raise
            say(f"{label} unchanged")
        if resource is CRDS:
            await _established(kube, obj["metadata"]["name"])


async def _established(kube: KubeClient, name: str, timeout: float = 10.0) -> None:
    """As `kubectl wait --for condition=Established`."""
    deadline = time.monotonic() + timeout
    while True:
        crd = await kube.get(CRDS, None, name)
        conditions = section(crd, "status").get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"CustomResourceDefinition {name} not Established after {timeout}s")
        await asyncio.sleep(0.05)


def orchestrator_deployment(env: dict[str, str]) -> KubeDict:
    """The orchestrator's Deployment as a cluster would hold it, with the settings the demo runs it with: nothing
    runs it here, it is where `kubectl kubernaut explain` reads the orchestrator's settings from."""
    settings = [{"name": k, "value": v} for k, v in sorted(env.items()) if k.startswith("KUBERNAUT_ORCHESTRATOR_")]
    container = {"name": "orchestrator", "image": "kubernaut-controlplane", "command": ["kubernaut-orchestrator"]}
    labels = {"app.kubernetes.io/name": "kubernaut-orchestrator"}
    return {
        "apiVersion": DEPLOYMENTS.api_version,
        "kind": DEPLOYMENTS.kind,
        "metadata": {"name": "kubernaut-orchestrator", "namespace": SYSTEM_NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{**container, "env": settings}]}},
        },
    }


@dataclass
class System:
    """The sandbox, an admin client for it, and the three processes (started, ready, leading)."""

    sandbox: SandboxHandle
    kube: KubeClient
    stack: Stack
    orchestrator: Component
    executor: Component
    tekton: Component

    def samples(self) -> Samples:
        """Both controllers' /metrics."""
        return {**self.executor.samples(), **self.orchestrator.samples()}


@asynccontextmanager
async def system(directory: Path, scenario: Scenario, say: Say = _say) -> AsyncIterator[System]:
    """Start everything the scenario needs; stop every process (SIGTERM) and the sandbox on the way out."""
    with running_sandbox(crds=(TEKTON_CRDS,)) as sandbox:
        kube = await KubeClient.connect(sandbox.kubeconfig_path, user_agent="kubernaut-demo")
        stack = Stack(sandbox.kubeconfig_for, directory)
        try:
            for path, kinds in APPLIED:
                await apply(kube, [doc for doc in documents(path) if doc.get("kind") in kinds], say)
            orchestrator = stack.orchestrator(LEADER_ELECTION="true", **scenario.orchestrator)
            # The shipped overlays' allowlist: the demo's bundles are the example workflows'.
            executor = stack.executor(
                LEADER_ELECTION="true", ALLOWED_BUNDLES="registry.example.com/kubernaut/workflows/*"
            )
            tekton = stack.tekton()
            for component in stack.components:
                component.start()
            await asyncio.gather(*(asyncio.to_thread(c.wait_ready) for c in stack.components))
            await asyncio.gather(*(asyncio.to_thread(c.wait_leading) for c in (orchestrator, executor)))
            await kube.create(DEPLOYMENTS, orchestrator_deployment(orchestrator.env))
            yield System(sandbox, kube, stack, orchestrator, executor, tekton)
        finally:
            stack.stop()
            await kube.close()


# -- the live table ---------------------------------------------------------------------------------------------
def printer_columns(crd_path: Path = RR_CRD) -> list[tuple[str, str, str]]:
    """(name, jsonPath, type) of the columns `kubectl get` shows by default (priority 0), from the CRD."""
    crd = yaml.safe_load(crd_path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("served"))
    return [
        (c["name"], c["jsonPath"], c["type"])
        for c in version.get("additionalPrinterColumns") or []
        if not c.get("priority")
    ]


def human_age(seconds: float) -> str:
    """kubectl's HumanDuration for the ages a demo sees."""
    whole = int(seconds)
    if whole < 120:
        return f"{max(whole, 0)}s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes < 10 and rest else f"{minutes}m"


def _at(obj: Any, json_path: str) -> Any:
    for part in json_path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


class Table:
    """Rows of requests as `kubectl get rr -w` prints them; a row only when a shown value changes."""

    def __init__(self, scenario: Scenario, columns: list[tuple[str, str, str]]) -> None:
        self.columns = columns
        targets = [r.target.partition("/")[2] for r in scenario.requests]
        reasons = [*BlockReason, *SkipReason]
        known = {"Phase": 9, "Reason": max(len(r) for r in reasons), "Target": max(map(len, targets))}
        known["Blocked-Until"] = len("2006-01-02T15:04:05.000000Z")
        self.widths = [max(len(r.name) for r in scenario.requests)] + [
            max(len(name), known.get(name, 0)) for name, _, _ in columns
        ]
        self._shown: dict[str, tuple[str, ...]] = {}

    def header(self) -> str:
        return self._line(["NAME", *(name.upper() for name, _, _ in self.columns)])

    def row(self, obj: KubeDict, now: datetime | None = None) -> str | None:
        now = now or datetime.now(UTC)
        cells = [str(obj["metadata"]["name"])]
        for _, json_path, kind in self.columns:
            value = _at(obj, json_path)
            if kind == "date" and isinstance(value, str):
                value = human_age((now - parse_time(value)).total_seconds())
            cells.append("" if value is None else str(value))
        shown = tuple(cell for cell, (_, _, kind) in zip(cells[1:], self.columns, strict=True) if kind != "date")
        if self._shown.get(cells[0]) == shown:
            return None
        self._shown[cells[0]] = shown
        return self._line(cells)

    def _line(self, cells: list[str]) -> str:
        return "   ".join(cell.ljust(width) for cell, width in zip(cells, self.widths, strict=True)).rstrip()


# -- the summary ------------------------------------------------------------------------------------------------
def summary(
    scenario: Scenario, observed: Observed, notification_requests: Iterable[KubeDict], problems: list[str]
) -> list[str]:
    """One line per request: final phase, reason, outcome, the blocks it went through, its notices, and whether
    all of it is what the scenario expects."""
    types = {nr["metadata"]["name"]: str(section(nr, "spec").get("type")) for nr in notification_requests}
    rows = [["NAME", "PHASE", "REASON", "OUTCOME", "BLOCKED-BY", "NOTIFIED", "AS-EXPECTED"]]
    for request in scenario.requests:
        status = section(observed.objects.get(request.name) or {}, "status")
        blocks = [str(step.reason) for step in observed.paths.get(request.name, []) if step.reason]
        notices = [types.get(str(ref.get("name")), "?") for ref in status.get("notificationRequestRefs") or []]
        wrong = any(p.startswith(f"{request.name}: ") for p in problems)
        reason = status.get("skipReason") or status.get("failureReason") or ""
        cells = [request.name, status.get("phase") or "-", reason, status.get("outcome") or ""]
        rows.append([*cells, ",".join(blocks), ",".join(notices), "NO" if wrong else "yes"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def blocking_metrics(samples: Samples) -> list[str]:
    """The orchestrator's blocking series, one line each."""

    def by(name: str, label: str, order: Iterable[str]) -> str:
        values = {dict(labels).get(label): v for (n, labels), v in samples.items() if n == ORCHESTRATOR_PREFIX + name}
        shown = [f"{key} {values[key]:g}" for key in order if values.get(key)]
        return ", ".join(shown) or "0"

    lag = ORCHESTRATOR_PREFIX + "blocked_expiry_lag_seconds"
    count = samples.get((f"{lag}_count", frozenset()), 0.0)
    total = samples.get((f"{lag}_sum", frozenset()), 0.0)
    buckets = sorted(
        (float(dict(labels)["le"]), value) for (name, labels), value in samples.items() if name == f"{lag}_bucket"
    )
    within = next((bound for bound, value in buckets if value >= count), float("inf"))
    lag_line = f"{count:g} expiries handled, mean {1000 * total / count:.1f} ms late, all within {within:g} s"
    current = sum(v for (n, _), v in samples.items() if n == ORCHESTRATOR_PREFIX + "current_blocked")
    decisions: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == ORCHESTRATOR_PREFIX + "routing_decisions_total" and value:
            label = dict(labels)
            key = f"{label.get('decision')}/{label['reason']}" if label.get("reason") else str(label.get("decision"))
            decisions[key] = decisions.get(key, 0.0) + value
    decided = ", ".join(f"{key} {value:g}" for key, value in sorted(decisions.items())) or "0"
    return [
        f"  routing_decisions_total              {decided}",
        f"  blocked_total                        {by('blocked_total', 'reason', BlockReason)}",
        f"  current_blocked                      {current:g}",
        f"  blocked_cooldown_expired_total       {by('blocked_cooldown_expired_total', 'reason', BlockReason)}",
        f"  blocked_expiry_lag_seconds           {lag_line if count else 'no expiry'}",
        f"  notification_requests_created_total  {by('notification_requests_created_total', 'type', NotificationType)}",
    ]


# -- the demo ---------------------------------------------------------------------------------------------------
async def _kept(running: System, scenario: Scenario, say: Say) -> None:
    """--keep: everything stays up until Ctrl-C, for a look around with kubectl and kubectl kubernaut."""
    say("Everything keeps running (Ctrl-C stops it). In another terminal:")
    say(f"  export KUBECONFIG={running.sandbox.kubeconfig_path}")
    say(f"  export PATH={Path(sys.executable).parent}:$PATH   # kubectl finds kubectl-kubernaut there")
    say(f"  kubectl get rr -n {scenario.namespace}; kubectl kubernaut status -n {scenario.namespace}")
    say(f"  kubectl kubernaut explain rr {scenario.requests[-1].name} -n {scenario.namespace}")
    say("")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:  # Ctrl-C: the way a kept demo ends; the result is the scenario's
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        say("stopping every process")


async def demo(scenario_path: Path, say: Say = _say, *, keep: bool = False) -> int:
    started = time.monotonic()
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="kubernaut-demo-"))
    keep_logs = True
    try:
        say("Kubernaut demo: the orchestrator and the executor against the sandbox API server (no cluster)")
        async with system(directory, scenario, say) as running:
            pids = ", ".join(f"{c.name} {c.process.pid}" for c in running.stack.components if c.process)
            say(f"processes: {pids} (logs in {directory})")
            say(f"to look around meanwhile: export KUBECONFIG={running.sandbox.kubeconfig_path}")
            settings = " ".join(f"{k}={v}" for k, v in scenario.orchestrator.items())
            say(f"scenario: {_shown(scenario_path)}, {len(scenario.requests)} requests; orchestrator {settings}")
            say("")
            table = Table(scenario, printer_columns())
            say(f"$ kubectl get rr -n {scenario.namespace} -w")
            say(table.header())

            def changed(obj: KubeDict) -> None:
                line = table.row(obj)
                if line is not None:
                    say(line)

            def created(request: Request) -> None:
                if request.note:
                    say(f"# {request.name}: {request.note}")

            observed = await play(running.kube, scenario, on_change=changed, on_create=created)
            notices = await notifications(running.kube, scenario.namespace)
            problems = check_requests(scenario, observed, notices)
            samples, metric_problems = await settled(running.samples, lambda s: check_metrics(scenario, s))
            say("")
            say(f"Summary after {observed.seconds:.1f} s of scenario:")
            for line in summary(scenario, observed, notices, problems):
                say(line)
            say("")
            say(f"Routing and blocking metrics scraped from the orchestrator's /metrics ({ORCHESTRATOR_PREFIX}*):")
            for line in blocking_metrics(samples):
                say(line)
            say("")
            if keep:
                await _kept(running, scenario, say)
        problems += metric_problems
        took = time.monotonic() - started
        if problems:
            say(f"FAILED: {len(problems)} thing(s) differ from the scenario (logs in {directory}):")
            for problem in problems:
                say(f"  - {problem}")
            return 1
        keep_logs = False
        say(
            f"OK: all {len(scenario.requests)} requests went as the scenario expects and the metrics agree "
            f"({took:.0f} s in all)."
        )
        return 0
    except ProcessFailed as error:
        say(f"FAILED: {error}")
        return 1
    except asyncio.CancelledError:
        keep_logs = False
        raise
    finally:
        if not keep_logs:
            shutil.rmtree(directory, ignore_errors=True)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(REPOSITORY))
    return str(path)


async def _interruptible(scenario_path: Path, keep: bool = False) -> int:
    """The demo, cancelled (so every `finally` stops its processes) by the first SIGINT or SIGTERM."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()

    def interrupt() -> None:
        if not interrupted.is_set():
            interrupted.set()
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    try:
        return await demo(scenario_path, keep=keep)
    except asyncio.CancelledError:
        if not interrupted.is_set():
            raise
        _say("\ninterrupted: every process stopped")
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO, help=f"the scenario ({_shown(SCENARIO)})")
    parser.add_argument(
        "--keep", action="store_true", help="after the scenario, keep the sandbox and processes running until Ctrl-C"
    )
    arguments = parser.parse_args(argv)
    configure_logging("console", "warning", process="demo")  # the table is the output; only trouble is logged
    try:
        return asyncio.run(_interruptible(arguments.scenario, arguments.keep))
    except KeyboardInterrupt:  # before the loop's handler was installed
        return 130


if __name__ == "__main__":
    sys.exit(main())
