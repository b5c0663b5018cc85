"""Profile a controller with py-spy while it drains the backlog of `benchmarks/backlog.py` (issue 14).

    .venv/bin/python hack/profile_backlog.py orchestrator|executor OUT.txt

Runs the controller under `py-spy record --format raw` (collapsed stacks; py-spy from PyPI, not a project
dependency) against a fresh sandbox holding the benchmark's backlog, until its writes are done, then prints the top
functions by own samples and by inclusive samples.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from benchmarks import backlog
from sandbox.stack import EXECUTION_NAMESPACE, SYSTEM_NAMESPACE, USERS, Component, Stack
from sandbox.testing import sandbox_process


async def profile(kind: str, raw: Path) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="profile-") as directory,
        sandbox_process(namespaces=(backlog.NAMESPACE, SYSTEM_NAMESPACE, EXECUTION_NAMESPACE)) as sandbox,
    ):
        if kind == "orchestrator":
            await backlog._seed(sandbox.url, backlog.RR_PATH, [backlog._request(i) for i in range(backlog.REQUESTS)])
            counts = {("patch", "remediationrequests", "status"): backlog.REQUESTS}
            component = Stack(sandbox.kubeconfig_for, Path(directory)).orchestrator(WORKERS="4")
        else:
            bodies = [backlog._execution(i) for i in range(backlog.EXECUTIONS)]
            await backlog._seed(sandbox.url, backlog.WFE_PATH, bodies)
            counts = {("patch", "workflowexecutions", "status"): backlog.EXECUTIONS}
            component = Stack(sandbox.kubeconfig_for, Path(directory)).executor(
                WORKERS="4", WATCHED_NAMESPACES=backlog.NAMESPACE
            )
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
        assert spy, "pip install py-spy into the venv"
        component.argv = [spy, "record", "--format", "raw", "--rate", "500", "-o", str(raw), "--", *component.argv]
        since = (await sandbox.admin.aio.state())["auditLastSequence"]
        component.start()
        await backlog._until_written(sandbox, USERS[kind], since, counts, component)
        await asyncio.sleep(0.5)
        _stop_profiled(component)


def _stop_profiled(component: Component) -> None:
    """SIGTERM the profiled child (py-spy's only child): py-spy sees it exit and writes its output."""
    assert component.process is not None
    pid = component.process.pid
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        os.kill(int(child), signal.SIGTERM)
    component.process.wait(30)
    component.terminate()


def top(raw: Path, count: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "own:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(count)]
    lines += ["inclusive:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(count * 2)]
    return "\n".join(lines)


CATEGORIES = (  # (name, a frame that puts a sample there), first match wins; "other" for the rest
    ("thread pool (aiohttp trust_env: netrc and proxy lookups per request)", "thread.py"),
    ("imports", "_find_and_load"),
    ("HTTP through ApiClient.call_api", "ApiClient.__call_api"),
    ("HTTP (KubeClient, aiohttp)", "KubeClient._send"),
    ("reconcile: own code, pydantic, routing", "Reconciler."),
    ("informer: watch decode, cache", "_Reflector."),
    ("event recorder", "EventRecorder."),
)


def categories(raw: Path) -> str:
    """Where the samples went, by the categories above (epoll waits apart)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        total += int(samples)
        frames = stack.split(";")
        name = "event loop waiting (epoll)" if "select (selectors.py" in frames[-1] else "other"
        name = next((c for c, frame in CATEGORIES if any(frame in f for f in frames)), name)
        counts[name] += int(samples)
    return "\n".join(f"  {n / total:6.1%}  {name}" for name, n in counts.most_common())


if __name__ == "__main__":
    kind, out = sys.argv[1], Path(sys.argv[2])
    asyncio.run(profile(kind, out))
    print(top(out))
    print("by category:")
    print(categories(out))
