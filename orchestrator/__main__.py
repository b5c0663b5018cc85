"""`kubernaut-orchestrator` / `python -m orchestrator`: runs against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import gc
import sys

# Start-up CPU (issue 14): these imports make some 90 000 objects that live as long as the process (pydantic
# schemas, kubernetes-asyncio's models, aiohttp); the cyclic collector would walk them again and again while they
# are made (about 20 ms, 4 % of the import CPU), and there is no garbage among them to find.
# run_controller_process freezes them once settings and logging are loaded.
_collecting = gc.isenabled()
gc.disable()
try:
    from orchestrator.app import setup
    from orchestrator.metrics import PREFIX
    from orchestrator.settings import OrchestratorSettings
    from shared.runtime.manager import run_controller_process
finally:
    if _collecting:
        gc.enable()

PROG = "kubernaut-orchestrator"


def main(argv: list[str] | None = None) -> int:
    return run_controller_process(PROG, OrchestratorSettings, argv, setup, metrics_prefix=PREFIX)


if __name__ == "__main__":
    sys.exit(main())
