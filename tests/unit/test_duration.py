from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.duration import MAX_DURATION, format_duration, later, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1h0m5s", 3605),
        ("2.5h", 9000),
    ],
)
def test_parse_accepts_seconds_and_go_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "abc", "5 minutes", "1d", "-5s", "m5"])
def test_parse_rejects_other_text_with_the_text_in_the_message(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (1.5, "1.5s"), (123, "2m3s"), (3605, "1h0m5s"), (60, "1m0s")],
)
def test_format_writes_go_style(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text


@given(st.integers(min_value=0, max_value=10**9))
def test_format_then_parse_round_trips_at_millisecond_precision(ms):
    assert parse_duration(format_duration(timedelta(milliseconds=ms))) == timedelta(milliseconds=ms)


@pytest.mark.parametrize("text", ["9999999999999h", "99999999h", "2562048h", "1e400", "9" * 400 + "h", "inf", "nan"])
def test_parse_refuses_durations_beyond_gos_largest_with_a_value_error(text):
    """Issue 17.4: a schema-valid but huge duration raised OverflowError (and later overflowed the deadline)."""
    with pytest.raises(ValueError, match=r"out of range|invalid duration"):
        parse_duration(text)


def test_gos_largest_duration_still_parses_and_its_deadline_fits():
    largest = parse_duration("2562047h47m16s")
    assert largest <= MAX_DURATION
    assert later(datetime(2026, 12, 5, tzinfo=UTC), largest).year == 2319
    assert later(datetime(9999, 1, 1, tzinfo=UTC), largest) == datetime.max.replace(tzinfo=UTC)
