"""`python -m benchmarks [NAME ...]`: run the named benchmarks (all by default), print one JSON document."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

import orjson

import benchmarks
from shared.runtime.logging import configure_logging

Benchmark = Callable[[], Coroutine[Any, Any, dict[str, Any]]]


def available() -> dict[str, Benchmark]:
    """Every module of the package that defines `async def run()`, by module name."""
    found: dict[str, Benchmark] = {}
    for module in pkgutil.iter_modules(benchmarks.__path__):
        if module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"benchmarks.{module.name}")
        run = getattr(loaded, "run", None)
        if run is not None:
            found[module.name] = cast(Benchmark, run)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    arguments = parser.parse_args(argv)
    every = available()
    unknown = [name for name in arguments.names if name not in every]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(sorted(every))}")
    configure_logging("auto", "warning", process="benchmarks")  # to stderr: stdout carries only the JSON document
    results: dict[str, Any] = {}
    for name in arguments.names or sorted(every):
        started = time.perf_counter()
        results[name] = asyncio.run(every[name]())
        results[name]["wall_seconds"] = round(time.perf_counter() - started, 3)
    sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
