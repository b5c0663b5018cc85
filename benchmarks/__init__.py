"""Benchmarks, run with `python -m benchmarks [NAME ...]` (or `make bench`); not part of the test suite.

Each benchmark is one module of this package with `async def run() -> dict[str, object]`; its result goes into
the single JSON document the command prints, under the module's name.
"""
