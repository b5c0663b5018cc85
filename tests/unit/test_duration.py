from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.duration import format_duration, parse_duration


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
