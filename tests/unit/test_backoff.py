from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.backoff import Backoff

seconds = st.floats(min_value=0.001, max_value=10_000, allow_nan=False)
backoffs = st.builds(
    lambda base, extra, multiplier, jitter: Backoff(
        timedelta(seconds=base), timedelta(seconds=base + extra), multiplier, jitter
    ),
    seconds,
    st.floats(min_value=0, max_value=100_000, allow_nan=False),
    st.floats(min_value=1.0, max_value=10.0, allow_nan=False),
    st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
)
DEFAULT = Backoff(timedelta(seconds=60), timedelta(seconds=600))


@given(backoff=backoffs, n=st.integers(min_value=1, max_value=10_000), seed=st.text(max_size=64))
def test_duration_is_always_within_base_and_max(backoff, n, seed):
    assert backoff.base <= backoff.duration(n, seed) <= backoff.max


@given(backoff=backoffs, n=st.integers(min_value=0, max_value=10_000))
def test_unjittered_curve_is_monotonic(backoff, n):
    assert backoff.nominal(n) <= backoff.nominal(n + 1)


@given(backoff=backoffs, n=st.integers(max_value=0), seed=st.text(max_size=8))
def test_attempt_below_one_waits_nothing(backoff, n, seed):
    assert backoff.duration(n, seed) == timedelta(0)


@given(n=st.integers(min_value=1, max_value=50), seed=st.text(max_size=64))
def test_jitter_is_reproducible_for_the_same_seed_and_attempt(n, seed):
    assert DEFAULT.duration(n, seed) == Backoff(timedelta(seconds=60), timedelta(seconds=600)).duration(n, seed)


def test_jitter_differs_between_seeds():
    values = {DEFAULT.duration(2, f"fingerprint-{i}") for i in range(20)}
    assert len(values) > 15


def test_default_curve_is_about_1_2_4_8_then_10_minutes():
    minutes = [DEFAULT.nominal(n).total_seconds() / 60 for n in range(1, 7)]
    assert minutes == [1, 2, 4, 8, 10, 10]
    for n, nominal in zip(range(1, 7), minutes, strict=True):
        jittered = DEFAULT.duration(n, "f").total_seconds() / 60
        assert max(1, nominal * 0.9) <= jittered <= min(10, nominal * 1.1)


def test_no_jitter_gives_the_nominal_curve():
    backoff = Backoff(timedelta(seconds=1), timedelta(seconds=100), 3.0, 0)
    assert [backoff.duration(n).total_seconds() for n in range(1, 6)] == [1, 3, 9, 27, 81]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((timedelta(0), timedelta(1)), "base must be positive"),
        ((timedelta(seconds=10), timedelta(seconds=5)), "at least base"),
        ((timedelta(seconds=1), timedelta(seconds=5), 0.5), "multiplier"),
        ((timedelta(seconds=1), timedelta(seconds=5), 2.0, 101), "jitter"),
    ],
)
def test_invalid_backoff_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        Backoff(*args)
