"""Event names (issue 17.7): always a valid name within 253 characters, unique per object, client-go's when it fits."""

from hypothesis import given
from hypothesis import strategies as st

from sandbox.objectmeta import dns_subdomain_problems
from shared.runtime.events import NAME_MAX, event_name

LABEL = r"[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?"
OBJECT_NAMES = st.from_regex(rf"{LABEL}(\.{LABEL}){{0,6}}", fullmatch=True).filter(lambda n: len(n) <= NAME_MAX)
LONG_NAMES = (
    st.integers(min_value=200, max_value=NAME_MAX)
    .flatmap(
        lambda size: st.text("abcdef0123456789.-", min_size=size - 2, max_size=size - 2).map(
            lambda middle: f"a{middle}z"
        )
    )
    .filter(lambda n: not dns_subdomain_problems(n))
)
STAMPS = st.integers(min_value=0, max_value=2**64 - 1)


@given(st.one_of(OBJECT_NAMES, LONG_NAMES), STAMPS)
def test_an_event_name_is_a_valid_name_within_253_characters(name: str, stamp: int):
    result = event_name(name, stamp)
    assert len(result) <= NAME_MAX
    assert not dns_subdomain_problems(result), (result, dns_subdomain_problems(result))
    assert result.endswith(f".{stamp:x}")


@given(st.one_of(OBJECT_NAMES, LONG_NAMES), STAMPS)
def test_a_name_that_fits_is_client_gos_object_dot_hex_time(name: str, stamp: int):
    if len(name) + len(f".{stamp:x}") <= NAME_MAX:
        assert event_name(name, stamp) == f"{name}.{stamp:x}"


@given(LONG_NAMES, st.text("abcdef0123456789", min_size=1, max_size=3), STAMPS)
def test_long_names_that_share_their_first_236_characters_get_different_event_names(name, tail, stamp):
    other = name[: NAME_MAX - len(tail)] + tail
    if other != name and not dns_subdomain_problems(other):
        assert event_name(name, stamp) != event_name(other, stamp)


def test_a_253_character_name_keeps_as_much_of_the_object_name_as_fits():
    name = "r" * 253
    result = event_name(name, 0x18A2B3C4D5E6F708)
    assert len(result) == NAME_MAX
    assert result.startswith("r" * 200) and result.endswith(".18a2b3c4d5e6f708")


def test_a_cut_that_ends_on_a_dot_or_dash_is_trimmed():
    stamp = 2**60  # 16 hex digits: the object part keeps 253 - 17 - 16 - 1 = 219 characters
    for separator in (".", "-"):
        name = "a" * 218 + separator + "b" * 34
        result = event_name(name, stamp)
        assert result.startswith("a" * 218 + "-"), result
        assert not dns_subdomain_problems(result), result
