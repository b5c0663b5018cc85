"""`python -m sandbox demo` stops everything on Ctrl-C: SIGINT once the table shows, and no child outlives it."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_kubernaut.settings import from_deployment, shown
from sandbox.demo import orchestrator_deployment
from sandbox.scenario import REPOSITORY, SCENARIO, load_scenario

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    """The live child processes of `pid`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The process's stdout, line by line, read on a thread (None at the end)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue[str | None], start: str, output: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        if line is None:
            raise AssertionError("the demo ended before showing its table:\n" + "".join(output))
        output.append(line)
        if line.startswith(start):
            return


@contextlib.contextmanager
def running_demo(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None], list[str]]]:
    """`python -m sandbox demo ARGUMENTS`, its stdout lines, and a list of the lines read so far. On exit the demo is
    killed if it still runs, and the rest of its output is read into the list."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "demo", *arguments],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = lines_of(process)
    output: list[str] = []
    try:
        yield process, lines, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        while (line := lines.get(timeout=5)) is not None:
            output.append(line)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
def test_ctrl_c_stops_the_demo_and_every_process_it_started():
    with running_demo() as (process, lines, output):
        wait_for_line(lines, "NAME ", output, timeout=60)
        started = children(process.pid)
        assert len(started) == 3, f"orchestrator, executor and Tekton simulator: {started}"
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
    assert "interrupted: every process stopped" in "".join(output)
    assert not [pid for pid in started if alive(pid)], "a child process outlived the demo"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
def test_keep_leaves_everything_running_for_kubectl_kubernaut_until_ctrl_c():
    """`make demo DEMO_ARGS=--keep`: after the scenario the processes still run, the printed KUBECONFIG reaches the
    sandbox, `kubectl-kubernaut` explains with the demo's settings (read from the Deployment the demo records), and
    Ctrl-C then ends the demo with the scenario's result."""
    with running_demo("--keep") as (process, lines, output):
        wait_for_line(lines, "  export KUBECONFIG=", output, timeout=180)
        kubeconfig = output[-1].strip().partition("=")[2]
        wait_for_line(lines, "  kubectl kubernaut explain rr ", output, timeout=10)
        assert len(children(process.pid)) == 3, "orchestrator, executor and Tekton simulator still run"
        plugin = Path(sys.executable).parent / "kubectl-kubernaut"

        def kubernaut(*arguments: str) -> Any:
            command = [str(plugin), *arguments, "-o", "json", "--kubeconfig", kubeconfig]
            return json.loads(subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout)

        review = kubernaut("status", "-n", "default")["manualReview"]
        assert review and review[0]["requests"], "the scenario's manual-review path waits for a human"
        skipped = review[0]["requests"][0].partition("/")[2]
        report = kubernaut("explain", "rr", skipped)
        assert report["settings"]["source"] == "deployment"
        env = {f"KUBERNAUT_ORCHESTRATOR_{k}": v for k, v in load_scenario(SCENARIO).orchestrator.items()}
        assert report["settings"]["values"] == shown(from_deployment("d", orchestrator_deployment(env)).settings)
        assert report["decision"]["reason"] == "PreviousExecutionFailed"
        started = children(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    assert "OK: all" in "".join(output)
    assert not [pid for pid in started if alive(pid)], "a child process outlived the demo"
