"""`python -m tests.chaos [--duration S] [--requests N] [--seed N]`: the chaos soak (`make chaos`).

Prints the faults as they are injected, then a summary (faults by kind, RRs by final phase, invariant checks);
exits 1 on any violation. Logs of every process stay in the directory it names.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.faults import ALL_FAULTS
from tests.chaos.run import ChaosConfig, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load and faults (600)")
    parser.add_argument("--requests", type=int, default=0, help="RemediationRequests to create (default: 2 per second)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the load and the fault schedule (random)")
    parser.add_argument("--faults", default=",".join(ALL_FAULTS), help="comma-separated fault kinds (all)")
    parser.add_argument("--directory", type=Path, default=None, help="where the process logs go (a new temp dir)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    faults = tuple(kind for kind in args.faults.split(",") if kind)
    unknown = set(faults) - set(ALL_FAULTS)
    if unknown:
        parser.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(ALL_FAULTS)}")
    config = ChaosConfig(
        seed=seed,
        duration=args.duration,
        requests=args.requests or max(int(args.duration * 2), 50),
        faults=faults,
        bursts=max(3, int(args.duration // 60)),
    )
    directory = args.directory or Path(tempfile.mkdtemp(prefix="kubernaut-chaos-"))
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    say(f"seed {seed}, logs in {directory}")
    report = asyncio.run(run_chaos(config, directory, say))
    print(report.summary(), flush=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
