"""Ineffective remediation chains (SPEC 4.9): the count from the newest link, against the rule walked in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.chains import IneffectiveChain, Link, LinkKind, ineffective_chain

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def link(name, created, ended, kind=LinkKind.COMPLETED, count=0) -> Link:
    return Link(name, at(created), at(ended), kind, count)


def count(created, links, acks=()) -> IneffectiveChain:
    return ineffective_chain(at(created), links, [at(a) for a in acks], WINDOW)


# -- the table of SPEC 4.9, row by row ------------------------------------------------------------------------
def test_no_history_means_no_chain():
    assert count(0, []).count == 0


def test_a_request_within_the_window_after_a_completion_counts_it():
    chain = count(40, [link("a", 0, 10)])
    assert (chain.count, chain.last_completion.name, chain.within_window) == (1, "a", True)


def test_the_count_grows_from_the_stored_count_of_the_newest_completion():
    assert count(100, [link("a", 0, 10), link("b", 30, 80, count=1)]).count == 2


def test_a_request_exactly_at_the_end_of_the_window_still_counts():
    assert count(40, [link("a", 0, 10)]).count == 1


def test_a_late_recurrence_ends_the_chain():
    chain = count(41, [link("a", 0, 10, count=2)])
    assert (chain.count, chain.within_window) == (0, False)


def test_a_failed_execution_ends_the_chain():
    assert count(60, [link("a", 0, 10, count=2), link("b", 20, 50, LinkKind.FAILED)]).count == 0


def test_a_tripped_chain_stays_tripped_however_late_the_next_request():
    links = [link("a", 0, 10, count=2), link("x", 20, 20, LinkKind.SKIPPED, count=3)]
    chain = count(24 * 60, links)
    assert (chain.count, chain.last_completion.name) == (3, "a")


def test_acknowledging_the_skipped_request_ends_the_chain():
    links = [link("a", 0, 10, count=2), link("x", 20, 20, LinkKind.SKIPPED, count=3)]
    assert count(25, links, acks=[20]).count == 0


def test_completions_at_or_before_an_acknowledged_request_no_longer_count():
    links = [link("a", 0, 10), link("b", 20, 30, count=1)]
    assert count(35, links, acks=[10]).count == 2 - 1  # a (ended at 10) no longer counts; b does
    assert count(35, links, acks=[30]).count == 0


def test_an_acknowledgement_of_an_older_request_caps_a_count_stored_before_it():
    # b was routed (count 2) before anyone acknowledged request "a": the acknowledgement still clears what came before.
    links = [link("z", -40, -30), link("a", -20, 0, count=1), link("b", 20, 30, count=2)]
    assert count(35, links, acks=[-20]).count == 2  # a (ended at 0) and b count, z (ended at -30) does not


# -- the rule walked in full, against the newest-link reading --------------------------------------------------
@dataclass
class Step:
    gap: int  # seconds after the previous request ended
    duration: int  # seconds from creation to its end
    result: LinkKind  # what its workflow would do (COMPLETED or FAILED), unless the chain skips it
    ack_before: int | None  # an acknowledgement, made just before this request, of request number n (clamped)


def walked(created: datetime, history: list[tuple[Link, bool]], ack: datetime | None, window: timedelta) -> int:
    """SPEC 4.9 literally: consecutive ineffective completions newest first; each one's successor (the next request
    in creation order, the new one for the newest) came within the window; stop at a failure, a late successor, or a
    completion at or before the acknowledgement."""
    ordered = sorted(history, key=lambda item: (item[0].created, item[0].name))
    creations = [item[0].created for item in ordered] + [created]
    count = 0
    executed = [(i, item[0]) for i, item in enumerate(ordered) if item[0].kind is not LinkKind.SKIPPED]
    for position, past in reversed(executed):
        if past.kind is LinkKind.FAILED:
            break
        if ack is not None and past.time <= ack:
            break
        if creations[position + 1] > past.time + window:
            break
        count += 1
    return count


steps = st.lists(
    st.builds(
        Step,
        gap=st.one_of(st.just(0), st.integers(0, 3600)),
        duration=st.one_of(st.just(0), st.integers(0, 900)),
        result=st.sampled_from([LinkKind.COMPLETED, LinkKind.COMPLETED, LinkKind.FAILED]),
        ack_before=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 40)),
    ),
    max_size=40,
)


@settings(max_examples=600, deadline=None)
@given(steps=steps, threshold=st.integers(1, 5), window_s=st.integers(1, 3600))
def test_the_newest_link_gives_the_count_the_full_walk_gives(steps, threshold, window_s):
    """A request routed after every earlier one ended, each storing its count; acknowledgements land at any time,
    on any earlier request (also one older than the newest link, after that link was routed)."""
    window = timedelta(seconds=window_s)
    history: list[tuple[Link, bool]] = []
    acked: list[datetime] = []
    clock = T0
    for number, step in enumerate(steps):
        if step.ack_before is not None and history:
            acked.append(history[min(step.ack_before, len(history) - 1)][0].created)
        created = clock + timedelta(seconds=step.gap)
        chain = ineffective_chain(created, [item[0] for item in history], acked, window)
        ack = max(acked, default=None)
        assert chain.count == walked(created, history, ack, window), (number, chain)
        kind = LinkKind.SKIPPED if chain.count >= threshold else step.result
        ended = created + timedelta(seconds=0 if kind is LinkKind.SKIPPED else step.duration)
        history.append((Link(f"rr-{number:03d}", created, ended, kind, chain.count), True))
        clock = ended
