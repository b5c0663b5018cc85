"""Label and field selectors with the grammar and meaning of apimachinery's `labels` and `fields` packages.

Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma-separated (AND).
A `!=` or `notin` requirement also matches objects without the label. Fields: `f=v`, `f==v`, `f!=v`, with `\\`
escapes for `\\`, `,` and `=`; a missing field has the value "". A parse error is a `SelectorError` whose message the
API answers as 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class SelectorError(ValueError):
    """A selector that does not parse; the message is what the API server answers."""


class Operator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_QUALIFIED_NAME: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_key_problems(key: str) -> list[str]:
    """`IsQualifiedName`: what is wrong with a label key (or annotation key, finalizer name); empty if fine."""
    problems: list[str] = []
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        problems.append("prefix part must be non-empty")
    elif slash:
        if len(prefix) > 253:
            problems.append("prefix part must be no more than 253 characters")
        if not _DNS_SUBDOMAIN.match(prefix):
            problems.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            )
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return problems


def label_value_problems(value: str) -> list[str]:
    """`IsValidLabelValue`: what is wrong with a label value; empty if fine."""
    problems: list[str] = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        problems.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
            "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    return problems


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case Operator.EQUALS | Operator.IN:
                return value is not None and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return value is None or value not in self.values
            case Operator.EXISTS:
                return value is not None
            case Operator.DOES_NOT_EXIST:
                return value is None
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                if value is None:
                    return False
                try:
                    number = int(value)
                except ValueError:
                    return False
                bound = int(self.values[0])
                return number > bound if self.operator is Operator.GREATER_THAN else number < bound
        return False  # pragma: no cover


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector: every requirement must match."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse `text`; raise SelectorError naming the requirement that does not parse."""
        return cls(tuple(_LabelParser(text).parse()))


_TOKEN: Final = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None:  # pragma: no cover - the token pattern accepts every character
                raise SelectorError(f"unable to parse requirement: unexpected character at {position}")
            self.tokens.append(match.group(1))
            position = match.end()
        self.index = 0

    def _peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> str | None:
        token = self._peek()
        self.index += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if not self.tokens:
            return requirements
        while True:
            requirements.append(self._requirement())
            token = self._next()
            if token is None:
                return requirements
            if token != ",":
                raise SelectorError(f"found '{token}', expected: ',' or 'end of string'")

    def _requirement(self) -> Requirement:
        token = self._next()
        if token == "!":
            key = self._key(self._next())
            return Requirement(key, Operator.DOES_NOT_EXIST)
        key = self._key(token)
        operator = self._peek()
        if operator is None or operator == ",":
            return Requirement(key, Operator.EXISTS)
        self.index += 1
        if operator in ("=", "=="):
            return Requirement(key, Operator.EQUALS, (self._value(),))
        if operator == "!=":
            return Requirement(key, Operator.NOT_EQUALS, (self._value(),))
        if operator in (">", "<"):
            bound = self._next() or ""
            if not re.fullmatch(r"-?[0-9]+", bound):
                raise SelectorError(
                    f"unable to parse requirement: values[0]: Invalid value: {bound!r}: for 'Gt', 'Lt' operators, "
                    "the value must be an integer"
                )
            return Requirement(key, Operator.GREATER_THAN if operator == ">" else Operator.LESS_THAN, (bound,))
        if operator in ("in", "notin"):
            values = self._value_set()
            if not values:
                raise SelectorError(
                    "unable to parse requirement: values: Invalid value: []: for 'in', 'notin' operators, "
                    "values set can't be empty"
                )
            return Requirement(key, Operator.IN if operator == "in" else Operator.NOT_IN, values)
        raise SelectorError(f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")

    def _key(self, token: str | None) -> str:
        if token is None or token in ("!", "=", "==", "!=", "(", ")", ",", "<", ">"):
            raise SelectorError(f"found '{token or ''}', expected: identifier")
        problems = label_key_problems(token)
        if problems:
            raise SelectorError(f'unable to parse requirement: key: Invalid value: "{token}": {"; ".join(problems)}')
        return token

    def _value(self) -> str:
        token = self._peek()
        if token is None or token == ",":
            return ""
        self.index += 1
        if token in ("!", "=", "==", "!=", "(", ")", "<", ">"):
            raise SelectorError(f"found '{token}', expected: identifier")
        self._check_value(token)
        return token

    def _value_set(self) -> tuple[str, ...]:
        if self._next() != "(":
            raise SelectorError("found '', expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            token = self._next()
            if token is None:
                raise SelectorError("found '', expected: ')'")
            if token == ")":
                if expect_value and values:
                    values.append("")
                return tuple(values)
            if token == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not expect_value:
                raise SelectorError(f"found '{token}', expected: ',' or ')'")
            self._check_value(token)
            values.append(token)
            expect_value = False

    @staticmethod
    def _check_value(value: str) -> None:
        problems = label_value_problems(value)
        if problems:
            raise SelectorError(f'unable to parse requirement: values[0]: Invalid value: "{value}": {problems[0]}')


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    equals: bool
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) is self.equals


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: every term must match."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    @property
    def fields(self) -> set[str]:
        return {requirement.field for requirement in self.requirements}

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(requirement.matches(fields) for requirement in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value `field` must equal, when the selector pins it (`RequiresExactMatch`)."""
        for requirement in self.requirements:
            if requirement.field == field and requirement.equals:
                return requirement.value
        return None

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """Parse `text`; raise SelectorError for a term without an operator or a bad escape."""
        requirements = []
        for term in _split_unescaped(text, ","):
            if term == "":
                continue
            requirements.append(_field_term(term))
        return cls(tuple(requirements))


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _field_term(term: str) -> FieldRequirement:
    escaped = False
    for index, char in enumerate(term):
        if escaped:
            escaped = False
            continue
        if char == "\\":
            escaped = True
            continue
        for operator, equals in (("!=", False), ("==", True), ("=", True)):
            if term.startswith(operator, index):
                field, value = term[:index], term[index + len(operator) :]
                return FieldRequirement(field, equals, _unescape(value))
    raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in ("\\", ",", "="):
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in (",", "="):
            raise SelectorError(f"invalid field selector: unescaped {char!r} in value")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: unterminated escape sequence")
    return "".join(out)
