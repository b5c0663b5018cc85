"""`kubernaut-executor` / `python -m executor`: runs against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import sys

from shared.startup import collector_paused

with collector_paused():  # the imports below are most of a controller's start-up CPU
    from executor.app import setup
    from executor.metrics import PREFIX
    from executor.settings import ExecutorSettings
    from shared.runtime.manager import run_controller_process

PROG = "kubernaut-executor"


def main(argv: list[str] | None = None) -> int:
    return run_controller_process(PROG, ExecutorSettings, argv, setup, metrics_prefix=PREFIX)


if __name__ == "__main__":
    sys.exit(main())
