"""`kubernaut-orchestrator` / `python -m orchestrator`."""

from __future__ import annotations

import sys

from orchestrator.settings import OrchestratorSettings
from shared.settings import SettingsProblem, load_settings

PROG = "kubernaut-orchestrator"


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(OrchestratorSettings, sys.argv[1:] if argv is None else argv, PROG)
    except SettingsProblem as problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    print(f"{PROG}: settings are valid; the controller is not implemented yet: {settings!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
