"""`kubernaut-orchestrator` / `python -m orchestrator`: runs against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import sys

from shared.startup import collector_paused

with collector_paused():  # the imports below are most of a controller's start-up CPU
    from orchestrator.app import setup
    from orchestrator.metrics import PREFIX
    from orchestrator.settings import OrchestratorSettings
    from shared.runtime.manager import run_controller_process

PROG = "kubernaut-orchestrator"


def main(argv: list[str] | None = None) -> int:
    return run_controller_process(PROG, OrchestratorSettings, argv, setup, metrics_prefix=PREFIX)


if __name__ == "__main__":
    sys.exit(main())
