"""MicroTime fields read as kube-apiserver reads them: Go's RFC3339Micro layout, exactly six fractional digits."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.microtime import RFC3339_MICRO, MicroTimeError, parse_micro_time
from sandbox.objectmeta import micro_timestamp


def refusal(text: str, rest: str, element: str) -> str:
    return f'parsing time "{text}" as "{RFC3339_MICRO}": cannot parse "{rest}" as "{element}"'


# The first is the message kube-apiserver v1.36.2 gave; the others follow Go's time.Parse element by element.
REFUSED = [
    ("2026-01-02T03:04:05Z", refusal("2026-01-02T03:04:05Z", "Z", ".000000")),
    ("2026-01-02T03:04:05.123Z", refusal("2026-01-02T03:04:05.123Z", ".123Z", ".000000")),
    ("2026-01-02T03:04:05.12345Z", refusal("2026-01-02T03:04:05.12345Z", ".12345Z", ".000000")),
    ("2026-01-02T03:04:05.1234567Z", refusal("2026-01-02T03:04:05.1234567Z", "7Z", "Z07:00")),
    ("2026-01-02 03:04:05.000000Z", refusal("2026-01-02 03:04:05.000000Z", " 03:04:05.000000Z", "T")),
    ("", refusal("", "", "2006")),
    ("26-01-02T03:04:05.000000Z", refusal("26-01-02T03:04:05.000000Z", "26-01-02T03:04:05.000000Z", "2006")),
    ("2026-01-02T03:04:05.000000", refusal("2026-01-02T03:04:05.000000", "", "Z07:00")),
    ("2026-13-02T03:04:05.000000Z", 'parsing time "2026-13-02T03:04:05.000000Z": month out of range'),
    ("2026-02-29T03:04:05.000000Z", 'parsing time "2026-02-29T03:04:05.000000Z": day out of range'),
    ("2026-01-02T24:04:05.000000Z", 'parsing time "2026-01-02T24:04:05.000000Z": hour out of range'),
    ("2026-01-02T03:04:05.000000Zabc", 'parsing time "2026-01-02T03:04:05.000000Zabc": extra text: "abc"'),
    (1767323045, "json: cannot unmarshal number into Go value of type string"),
]


@pytest.mark.parametrize(("value", "message"), REFUSED)
def test_a_micro_time_without_exactly_six_digits_is_refused_in_the_servers_words(value, message):
    with pytest.raises(MicroTimeError) as raised:
        parse_micro_time(value)
    assert str(raised.value) == message


def test_null_is_no_time_and_an_offset_is_read_into_utc():
    assert parse_micro_time(None) is None
    assert parse_micro_time("2026-01-02T03:04:05.000001+01:30") == datetime(2026, 1, 2, 1, 34, 5, 1, tzinfo=UTC)
    assert parse_micro_time("2024-02-29T03:04:05,500000Z") == datetime(2024, 2, 29, 3, 4, 5, 500000, tzinfo=UTC)


moments = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


@given(moment=moments)
def test_what_the_server_writes_it_reads_back(moment):
    assert parse_micro_time(micro_timestamp(moment)) == moment


@given(moment=moments, digits=st.integers(min_value=0, max_value=9).filter(lambda n: n != 6))
def test_any_other_number_of_fractional_digits_is_refused(moment, digits):
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + ("." + "1" * digits if digits else "") + "Z"
    with pytest.raises(MicroTimeError, match="cannot parse"):
        parse_micro_time(text)


@given(moment=moments, minutes=st.integers(min_value=-23 * 60, max_value=23 * 60))
def test_every_offset_names_the_same_instant(moment, minutes):
    offset = timedelta(minutes=minutes)
    sign, whole = ("+" if minutes >= 0 else "-"), abs(minutes)
    local = (moment + offset).strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{sign}{whole // 60:02d}:{whole % 60:02d}"
    assert parse_micro_time(local) == moment
