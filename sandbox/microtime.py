"""`metav1.MicroTime` as kube-apiserver reads it: Go's `time.Parse` with layout RFC3339Micro, and its error words.

A MicroTime (Lease `acquireTime`/`renewTime`, Event `eventTime`, `series.lastObservedTime`) must carry exactly six
fractional digits: `2026-01-02T03:04:05Z` is refused with `parsing time "2026-01-02T03:04:05Z" as
"2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"` (checked against kube-apiserver v1.36.2). The
parser walks the layout's elements as Go's does, so the error names the same element and the same rest of the text.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sandbox.fielderrors import go_quote

RFC3339_MICRO: Final = "2006-01-02T15:04:05.000000Z07:00"


class MicroTimeError(ValueError):
    """A value kube-apiserver's decoder refuses for a MicroTime field; the message is the server's."""


def parse_micro_time(value: Any) -> datetime | None:
    """The instant a MicroTime field's JSON value names (UTC); None for JSON null. Raises MicroTimeError."""
    if value is None:
        return None
    if not isinstance(value, str):
        kind = {bool: "bool", int: "number", float: "number", dict: "object", list: "array"}.get(type(value), "value")
        raise MicroTimeError(f"json: cannot unmarshal {kind} into Go value of type string")
    return _Parse(value).run()


class _Parse:
    """One run of Go's `time.Parse(RFC3339Micro, text)`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rest = text
        self.fields: dict[str, int] = {}

    def run(self) -> datetime:
        steps: list[tuple[str, str, Callable[[], str | None]]] = [
            ("", "2006", self._year),
            ("-", "01", lambda: self._number("month", fixed=True, below=13, above=0)),
            ("-", "02", lambda: self._number("day", fixed=True, below=100, above=-1, check_range=False)),
            ("T", "15", lambda: self._number("hour", fixed=False, below=24, above=-1)),
            (":", "04", lambda: self._number("minute", fixed=True, below=60, above=-1)),
            (":", "05", lambda: self._number("second", fixed=True, below=60, above=-1)),
            ("", ".000000", self._fraction),
            ("", "Z07:00", self._zone),
        ]
        for prefix, element, parse in steps:
            for char in prefix:  # a literal: Go's skip() reports the text left where it stopped matching
                if not self.rest.startswith(char):
                    raise self._cannot(self.rest, prefix)
                self.rest = self.rest[1:]
            held = self.rest
            out_of_range = parse()
            if out_of_range == "":
                raise self._cannot(held, element)
            if out_of_range is not None:
                raise MicroTimeError(f"parsing time {go_quote(self.text)}: {out_of_range} out of range")
        if self.rest:
            raise MicroTimeError(f"parsing time {go_quote(self.text)}: extra text: {go_quote(self.rest)}")
        year, month, day = self.fields["year"], self.fields["month"], self.fields["day"]
        if day < 1 or day > calendar.monthrange(year if year > 0 else 2000, month)[1]:
            raise MicroTimeError(f"parsing time {go_quote(self.text)}: day out of range")
        wall = datetime(
            max(year, 1),  # Go takes year 0; Python's calendar starts at 1, a difference no client will meet
            month,
            day,
            self.fields["hour"],
            self.fields["minute"],
            self.fields["second"],
            self.fields["micro"],
            tzinfo=UTC,
        )
        try:  # the offset may reach 24:60, more than Python's timezone() takes, so it is subtracted by hand
            return wall - timedelta(seconds=self.fields["offset"])
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC) if self.fields["offset"] > 0 else datetime.max.replace(tzinfo=UTC)

    def _cannot(self, rest: str, element: str) -> MicroTimeError:
        return MicroTimeError(
            f"parsing time {go_quote(self.text)} as {go_quote(RFC3339_MICRO)}: "
            f"cannot parse {go_quote(rest)} as {go_quote(element)}"
        )

    # Each parser consumes its element and returns None when fine, "" when the text does not fit (Go's errBad), or
    # the name of the field that is out of range.
    def _year(self) -> str | None:
        digits = self.rest[:4]
        if len(digits) < 4 or not digits.isascii() or not digits.isdigit():
            return ""
        self.fields["year"], self.rest = int(digits), self.rest[4:]
        return None

    def _number(self, name: str, *, fixed: bool, below: int, above: int, check_range: bool = True) -> str | None:
        text = self.rest
        if not _digit(text, 0):
            return ""
        if not _digit(text, 1):
            if fixed:
                return ""
            number, self.rest = int(text[0]), text[1:]
        else:
            number, self.rest = int(text[:2]), text[2:]
        self.fields[name] = number
        if check_range and not above < number < below:
            return name
        return None

    def _fraction(self) -> str | None:
        text = self.rest
        if len(text) < 7 or text[0] not in ".," or not all(_digit(text, i) for i in range(1, 7)):
            return ""
        self.fields["micro"], self.rest = int(text[1:7]), text[7:]
        return None

    def _zone(self) -> str | None:
        text = self.rest
        if text.startswith("Z"):
            self.fields["offset"], self.rest = 0, text[1:]
            return None
        if len(text) < 6 or text[3] != ":" or text[0] not in "+-":
            return ""
        if not (_digit(text, 1) and _digit(text, 2) and _digit(text, 4) and _digit(text, 5)):
            return ""
        hours, minutes = int(text[1:3]), int(text[4:6])
        self.rest = text[6:]
        if hours > 24:
            return "time zone offset hour"
        if minutes > 60:
            return "time zone offset minute"
        seconds = (hours * 60 + minutes) * 60
        self.fields["offset"] = seconds if text[0] == "+" else -seconds
        return None


def _digit(text: str, index: int) -> bool:
    return len(text) > index and "0" <= text[index] <= "9"
