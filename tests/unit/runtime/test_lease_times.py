"""The Lease times the elector writes are MicroTimes kube-apiserver reads: UTC, exactly six fractional digits."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sandbox.microtime import parse_micro_time
from shared.runtime.leaderelection import _micro_time


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2999, 12, 30), timezones=st.just(UTC)),
    offset_minutes=st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_every_instant_is_written_in_utc_with_six_digits_whatever_zone_the_clock_gives(moment, offset_minutes):
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    written = _micro_time(FixedClock(local))  # type: ignore[arg-type]
    assert written.endswith("Z") and len(written.split(".")[1]) == 7
    assert parse_micro_time(written) == moment
