"""`kubernaut-executor` / `python -m executor`."""

from __future__ import annotations

import sys

from executor.settings import ExecutorSettings
from shared.settings import SettingsProblem, load_settings

PROG = "kubernaut-executor"


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(ExecutorSettings, sys.argv[1:] if argv is None else argv, PROG)
    except SettingsProblem as problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    print(f"{PROG}: settings are valid; the controller is not implemented yet: {settings!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
