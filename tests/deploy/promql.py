"""Just enough PromQL reading to check that alerts and dashboards name series and labels that exist.

`selectors(expr)` lists every vector selector: its metric name and its label matchers. Function names, aggregation
keywords, `by (...)`/`on (...)` label lists, ranges, offsets and numbers are not selectors and are left out.
"""

from __future__ import annotations

import re
from typing import NamedTuple

KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right"}
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_SELECTOR = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


class Matcher(NamedTuple):
    label: str
    operator: str  # =, !=, =~, !~
    value: str


class Selector(NamedTuple):
    metric: str
    matchers: tuple[Matcher, ...]


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of a PromQL expression."""
    found: list[Selector] = []

    def take(match: re.Match[str]) -> str:
        matchers = _matchers(match.group(2), expr)
        name = match.group(1) or next((m.value for m in matchers if m.label == "__name__"), "")
        found.append(Selector(name, matchers))
        return " "

    text = _SELECTOR.sub(take, _RANGES.sub(" ", _LABEL_LISTS.sub(" ", expr)))
    for match in _IDENTIFIER.finditer(_STRINGS.sub(" ", text)):
        name, call = match.groups()
        if call is None and name not in KEYWORDS:
            found.append(Selector(name, ()))
    return found


def _matchers(body: str, expr: str) -> tuple[Matcher, ...]:
    result, position, body = [], 0, body.strip()
    while position < len(body):
        match = _MATCHER.match(body, position)
        if match is None:
            raise ValueError(f"cannot read the label matchers {{{body}}} of {expr!r}")
        result.append(Matcher(*match.groups()))
        position = match.end()
    return tuple(result)
