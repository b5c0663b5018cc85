"""The one backoff formula (SPEC 6), with jitter that is reproducible for the same (seed, attempt).

A restarted orchestrator recomputing a fingerprint's `nextAllowedExecution` gets the same answer, because the
jitter comes from a hash of the seed (the fingerprint) and the attempt number, never from a global random source.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Backoff:
    """`duration(n)`: 0 for n < 1, else min(base * multiplier^(n-1), max), jittered by +-jitter_percent and
    clamped to [base, max]."""

    base: timedelta
    max: timedelta
    multiplier: float = 2.0
    jitter_percent: float = 10.0

    def __post_init__(self) -> None:
        if self.base <= timedelta(0):
            raise ValueError(f"backoff base must be positive (got {self.base})")
        if self.max < self.base:
            raise ValueError(f"backoff max ({self.max}) must be at least base ({self.base})")
        if self.multiplier < 1:
            raise ValueError(f"backoff multiplier must be >= 1 (got {self.multiplier})")
        if not 0 <= self.jitter_percent <= 100:
            raise ValueError(f"backoff jitter_percent must be within 0..100 (got {self.jitter_percent})")

    def nominal(self, n: int) -> timedelta:
        """The un-jittered curve: monotonic non-decreasing in n."""
        if n < 1:
            return timedelta(0)
        base = self.base.total_seconds()
        ceiling = self.max.total_seconds()
        # Cap the exponent before computing the power: multiplier**(n-1) overflows for large n.
        if self.multiplier > 1 and n - 1 >= math.log(ceiling / base, self.multiplier):
            return self.max
        return timedelta(seconds=min(base * self.multiplier ** (n - 1), ceiling))

    def duration(self, n: int, seed: str = "") -> timedelta:
        """The jittered delay before attempt n + 1, reproducible for the same (seed, n)."""
        nominal = self.nominal(n)
        if n < 1:
            return nominal
        factor = 1.0 + (self.jitter_percent / 100.0) * _unit_interval(seed, n)
        jittered = nominal.total_seconds() * factor
        return timedelta(seconds=min(max(jittered, self.base.total_seconds()), self.max.total_seconds()))


def _unit_interval(seed: str, n: int) -> float:
    """A deterministic value in [-1, 1] derived from (seed, n)."""
    digest = hashlib.sha256(f"{seed}\x00{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / float(2**64 - 1) * 2.0 - 1.0
