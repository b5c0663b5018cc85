"""Ineffective remediation chains (SPEC 4.9): a workflow that succeeds while its alert keeps coming back.

Pure: a function of the new request's creation time, the chain links of its fingerprint and target, the
acknowledgements of its fingerprint and the window. No awaits, no client.

A *link* is a request of the fingerprint and target whose routing ended in something the chain counts or ends on:
a completed remediation (outcome `Remediated` or `DryRun`), a failed execution, or a request skipped because the
chain had tripped (`IneffectiveChain`). Each stored its `ineffectiveCount` when it was routed, so a new request
reads the count from the newest link alone (like the failure history of SPEC 4.3) instead of walking the history:

  newest link   new request's count
  none          0
  failed        0                                   a failure ends the chain
  completed     newest.count + 1                    when the new request came within the window after it completed
                0                                   otherwise (the remediation held: a late recurrence)
  skipped       newest.count                        the chain stays tripped until someone acknowledges it

Acknowledgement (`kubernaut.ai/ineffective-chain-acknowledged` on any request of the fingerprint): completions at
or before that request's creation no longer count. An acknowledgement of a request older than the newest link may
have come after the link was routed, so the stored count is capped by the completions after the acknowledgement
(one pass over the links, which the newest-link lookup makes anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

CHAIN_ACKNOWLEDGED_ANNOTATION = "kubernaut.ai/ineffective-chain-acknowledged"


class LinkKind(StrEnum):
    COMPLETED = "Completed"
    """A completed remediation: outcome Remediated or DryRun."""
    FAILED = "Failed"
    """Its workflow failed during (or before) execution: the chain ends here."""
    SKIPPED = "Skipped"
    """Skipped because the chain had tripped (skip reason IneffectiveChain)."""


@dataclass(frozen=True, slots=True)
class Link:
    """A request of the fingerprint and target as the chain sees it."""

    name: str
    created: datetime
    time: datetime
    """When it ended: completionTime (for a skipped request, when it was skipped)."""
    kind: LinkKind
    ineffective_count: int
    """The count stored on it when it was routed."""

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        return (self.time, self.created, self.name)


@dataclass(frozen=True, slots=True)
class IneffectiveChain:
    """The ineffective-remediation count a new request of the fingerprint and target gets, and why."""

    count: int = 0
    newest: Link | None = None
    """The newest link the count was read from."""
    last_completion: Link | None = None
    """The chain's newest completed remediation: it names the chain (one notice per chain)."""
    acknowledged_at: datetime | None = None
    """Creation time of the newest acknowledged request of the fingerprint."""
    within_window: bool | None = None
    """Whether the new request came within the window after the newest completion (None: not asked)."""


def ineffective_chain(
    created: datetime, links: Iterable[Link], acknowledged: Iterable[datetime], window: timedelta
) -> IneffectiveChain:
    """SPEC 4.9: the count of consecutive ineffective completions of a fingerprint and target for a new request
    created at `created`, from the chain links of the fingerprint and target (not the new request itself) and the
    creation times of the fingerprint's acknowledged requests."""
    items = list(links)
    ack = max(acknowledged, default=None)
    newest = max(items, key=lambda link: link.order, default=None)
    completions = [link for link in items if link.kind is LinkKind.COMPLETED]
    last_completion = max(completions, key=lambda link: link.order, default=None)
    if newest is None or newest.kind is LinkKind.FAILED:
        return IneffectiveChain(0, newest, None, ack)
    if newest.kind is LinkKind.SKIPPED:
        if ack is not None and ack >= newest.created:
            return IneffectiveChain(0, newest, last_completion, ack)
        count = _capped(newest.ineffective_count, completions, ack, newest)
        return IneffectiveChain(count, newest, last_completion, ack)
    if ack is not None and newest.time <= ack:
        return IneffectiveChain(0, newest, newest, ack)
    within = created <= newest.time + window
    if not within:
        return IneffectiveChain(0, newest, newest, ack, within_window=False)
    count = 1 + _capped(newest.ineffective_count, completions, ack, newest)
    return IneffectiveChain(count, newest, newest, ack, within_window=True)


def _capped(stored: int, completions: list[Link], ack: datetime | None, newest: Link) -> int:
    """`stored` counts completions before `newest`; those at or before the acknowledgement no longer count."""
    if ack is None or stored <= 0:
        return max(stored, 0)
    after = sum(1 for c in completions if c is not newest and ack < c.time <= newest.created)
    return min(stored, after)
