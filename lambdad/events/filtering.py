"""AWS's event-filtering pattern language (FilterCriteria of event source mappings).

A pattern is a JSON object whose keys follow the record's keys; every leaf is a list of *matchers* and
matches when any matcher matches the record's value there (when the value is a list, any element of
it). Matchers, as AWS documents them for Lambda event filtering and EventBridge event patterns:

==========================  ==================================================================
``"text"``, ``5``, ``true``  equal (numbers compare as numbers: ``5`` matches ``5.0``)
``null``                     the key is there and its value is null
``{"prefix": "a"}``          a string starting with ``a`` (``{"prefix": {"equals-ignore-case": "a"}}``)
``{"suffix": "a"}``          a string ending with ``a`` (``{"suffix": {"equals-ignore-case": "a"}}``)
``{"equals-ignore-case": "a"}``  a string equal to ``a`` ignoring case
``{"wildcard": "a*.png"}``   ``*`` matches any run of characters (``\\*`` a star itself)
``{"anything-but": ...}``    a value (or list of values), or a prefix/suffix/wildcard/equals-ignore-case
                             matcher, the value must *not* match (a missing key never matches)
``{"numeric": [">", 0, "<=", 5]}``  a number in the range (``=``, ``<``, ``<=``, ``>``, ``>=``)
``{"exists": true}``         the key is there (``false``: it is not)
``{"cidr": "10.0.0.0/24"}``  an IP address string inside the range
==========================  ==================================================================

``{"$or": [pattern, pattern, ...]}`` inside an object matches when any of its patterns does. A mapping's
filters (at most ``MAX_FILTERS``) are OR'ed: a record is kept when any filter matches it. Anything else
is refused with AWS's ``InvalidParameterValueException`` "Invalid filter pattern definition.".
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lambdad.errors import InvalidParameterValueException

INVALID_PATTERN = "Invalid filter pattern definition."
# AWS's default quota of filters per event source mapping.
MAX_FILTERS = 5
_MISSING = object()
_OPERATORS = {"=", "<", "<=", ">", ">="}
_STRING_MATCHERS = {"prefix", "suffix", "equals-ignore-case", "wildcard"}


def InvalidPattern() -> InvalidParameterValueException:
    """AWS's error for a filter pattern it refuses."""
    return InvalidParameterValueException(INVALID_PATTERN)


@dataclass(frozen=True)
class FilterSet:
    """A mapping's compiled filters; an empty set keeps every record."""

    patterns: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_criteria(cls, criteria: dict[str, Any] | None) -> FilterSet:
        """Parse and check ``FilterCriteria`` (``{"Filters": [{"Pattern": "<json>"}, ...]}``)."""
        filters = (criteria or {}).get("Filters") or []
        if len(filters) > MAX_FILTERS:
            raise InvalidParameterValueException(
                f"The number of filters exceeds the limit of {MAX_FILTERS} filters per event source mapping."
            )
        return cls(tuple(parse_pattern((item or {}).get("Pattern")) for item in filters))

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether any filter keeps ``record`` (every record when there are none)."""
        return not self.patterns or any(matches(pattern, record) for pattern in self.patterns)


def parse_pattern(text: Any) -> dict[str, Any]:
    """One filter's ``Pattern`` as a checked object; ``InvalidPattern`` if AWS would refuse it."""
    if not isinstance(text, str):
        raise InvalidPattern()
    try:
        pattern = json.loads(text)
        if not isinstance(pattern, dict):
            raise InvalidPattern()
        _check_object(pattern)
    except (ValueError, RecursionError) as error:  # not JSON, or nested past any sensible pattern
        raise InvalidPattern() from error
    return pattern


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """Whether ``record`` matches one (checked) pattern object."""
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches(option, record) for option in expected):
                return False
            continue
        value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
        if isinstance(expected, dict):
            if not _matches_nested(expected, value):
                return False
        elif not _matches_leaf(expected, value):
            return False
    return True


def _matches_nested(pattern: dict[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        return any(_matches_nested(pattern, item) for item in value)
    # Below a key that is missing or not an object, none of the pattern's keys is there: only
    # ``exists: false`` matchers can match.
    return matches(pattern, value if isinstance(value, dict) else {})


def _matches_leaf(matchers: list[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    candidates = value if isinstance(value, list) else [value]
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            if matcher["exists"]:
                return True
            continue
        if any(_matches_one(matcher, candidate) for candidate in candidates):
            return True
    return False


def _matches_one(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    ((name, argument),) = matcher.items()
    if name == "numeric":
        return _is_number(value) and _in_range(argument, value)
    if name == "anything-but":
        return _anything_but(argument, value)
    if name == "cidr":
        return isinstance(value, str) and _in_network(argument, value)
    return isinstance(value, str) and _string_matches(name, argument, value)


def _equal(expected: Any, value: Any) -> bool:
    if _is_number(expected):
        return _is_number(value) and float(expected) == float(value)
    if isinstance(expected, bool) or expected is None:
        return value is expected
    return isinstance(value, str) and value == expected


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _in_range(argument: list[Any], value: float) -> bool:
    for operator, bound in zip(argument[::2], argument[1::2], strict=True):
        ok = {
            "=": value == bound,
            "<": value < bound,
            "<=": value <= bound,
            ">": value > bound,
            ">=": value >= bound,
        }[operator]
        if not ok:
            return False
    return True


def _anything_but(argument: Any, value: Any) -> bool:
    if isinstance(argument, dict):
        ((name, inner),) = argument.items()
        if not isinstance(value, str):
            return False
        if isinstance(inner, list):
            return not any(_string_matches(name, item, value) for item in inner)
        return not _string_matches(name, inner, value)
    excluded = argument if isinstance(argument, list) else [argument]
    return not any(_equal(item, value) for item in excluded)


def _string_matches(name: str, argument: Any, value: str) -> bool:
    if isinstance(argument, dict):  # prefix/suffix with equals-ignore-case
        argument, value = argument["equals-ignore-case"].casefold(), value.casefold()
    if name == "prefix":
        return value.startswith(argument)
    if name == "suffix":
        return value.endswith(argument)
    if name == "equals-ignore-case":
        return value.casefold() == str(argument).casefold()
    return _wildcard(argument).fullmatch(value) is not None


def _wildcard(argument: str) -> re.Pattern[str]:
    parts = re.split(r"(\\\*|\\\\|\*)", argument)
    regex = "".join(
        ".*" if part == "*" else re.escape(part[1:]) if part in ("\\*", "\\\\") else re.escape(part)
        for part in parts
    )
    return re.compile(regex, re.DOTALL)


def _in_network(argument: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(argument, strict=False)
    except ValueError:
        return False


# Checking patterns -------------------------------------------------------------------------------


def _check_object(pattern: dict[str, Any]) -> None:
    if not pattern:
        raise InvalidPattern()
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidPattern()
            for option in value:
                if not isinstance(option, dict):
                    raise InvalidPattern()
                _check_object(option)
        elif isinstance(value, dict):
            _check_object(value)
        elif isinstance(value, list):
            if not value:
                raise InvalidPattern()
            for matcher in value:
                _check_matcher(matcher)
        else:
            raise InvalidPattern()


def _check_matcher(matcher: Any) -> None:
    if matcher is None or isinstance(matcher, str | bool) or _is_number(matcher):
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise InvalidPattern()
    ((name, argument),) = matcher.items()
    if name == "exists":
        _require(isinstance(argument, bool))
    elif name == "numeric":
        _check_numeric(argument)
    elif name == "anything-but":
        _check_anything_but(argument)
    elif name == "cidr":
        _require(isinstance(argument, str))
        try:
            ipaddress.ip_network(argument, strict=False)
        except ValueError as error:
            raise InvalidPattern() from error
    elif name in ("prefix", "suffix"):
        _check_affix(argument)
    elif name in _STRING_MATCHERS:
        _require(isinstance(argument, str))
        if name == "wildcard":
            _require("**" not in argument)
    else:
        raise InvalidPattern()


def _check_affix(argument: Any) -> None:
    if isinstance(argument, dict):
        _require(list(argument) == ["equals-ignore-case"] and isinstance(argument["equals-ignore-case"], str))
    else:
        _require(isinstance(argument, str))


def _check_anything_but(argument: Any) -> None:
    if isinstance(argument, dict):
        _require(len(argument) == 1)
        ((name, inner),) = argument.items()
        _require(name in _STRING_MATCHERS)
        values: Sequence[Any] = inner if isinstance(inner, list) else [inner]
        _require(bool(values) and all(isinstance(item, str) for item in values))
        if name == "wildcard":
            _require(all("**" not in item for item in values))
        return
    values = argument if isinstance(argument, list) else [argument]
    _require(bool(values))
    _require(all(isinstance(item, str) or _is_number(item) for item in values))


def _check_numeric(argument: Any) -> None:
    _require(isinstance(argument, list) and len(argument) in (2, 4))
    operators, bounds = argument[::2], argument[1::2]
    _require(all(op in _OPERATORS for op in operators) and all(_is_number(b) for b in bounds))
    if len(argument) == 2:
        return
    # Two bounds: one lower (> or >=) and one upper (< or <=), lower below upper.
    lower = [(op, b) for op, b in zip(operators, bounds, strict=True) if op in (">", ">=")]
    upper = [(op, b) for op, b in zip(operators, bounds, strict=True) if op in ("<", "<=")]
    _require(len(lower) == 1 and len(upper) == 1 and lower[0][1] < upper[0][1])


def _require(condition: bool) -> None:
    if not condition:
        raise InvalidPattern()
