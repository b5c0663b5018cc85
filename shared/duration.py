"""Go-style durations ("1h30m", "90s", "500ms"), the form Kubernetes users write and read.

One parser and one formatter serve the CRD fields (`spec.timeouts.executing`, `status.duration`) and the settings.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

# Same grammar as Go's time.ParseDuration, without the sign: one or more <number><unit> groups.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Go's largest Duration (int64 nanoseconds, about 292 years): what Kubernetes and Tekton accept. A longer one is
# refused here instead of overflowing the datetime arithmetic of every deadline built from it.
MAX_DURATION = timedelta(microseconds=(2**63 - 1) // 1000)
_MAX_TEXT = "2562047h47m16s"


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration string, or a bare number of seconds; raise ValueError naming the bad text, also for a
    duration longer than Go's largest (`MAX_DURATION`). Never raises OverflowError."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        if not _WHOLE.match(value):
            raise ValueError(
                f"invalid duration {text!r}: expected a number of seconds or a Go duration like 90s, 5m, 1h30m"
            ) from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(value))
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} out of range: at most {_MAX_TEXT}")
    return timedelta(seconds=seconds)


def later(start: datetime, delta: timedelta) -> datetime:
    """`start + delta`, or the latest representable time when that would overflow."""
    try:
        return start + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=start.tzinfo)


def format_duration(delta: timedelta) -> str:
    """Format like Go's Duration.String() at millisecond precision: 0s, 250ms, 1.5s, 2m3s, 1h0m5s."""
    total_ms = round(delta.total_seconds() * 1000)
    if total_ms < 0:
        raise ValueError(f"negative duration {delta}")
    if total_ms == 0:
        return "0s"
    if total_ms < 1000:
        return f"{total_ms}ms"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"
