"""Condition operators, policy variables and wildcards, as IAM's "Condition operators" and "Policy
variables" pages describe them.

A request's context maps condition keys (case-insensitive, as in IAM) to one value or a set of values.
A condition holds when its key's value matches any of its values (values OR); a statement's
conditions all hold (keys and operators AND). A key missing from the context fails a positive test,
satisfies a negated one (``StringNotEquals``, ``ArnNotLike``, ``NotIpAddress``...), satisfies any
``...IfExists`` test and any ``ForAllValues:`` test, and fails any ``ForAnyValue:`` test; ``Null``
asks exactly whether it is missing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lambdad.policy.document import Condition, Operator, parse_operator

#: A context value: one string, or a set of them (a multivalued key such as ``lambda:Layer``).
ContextValue = str | tuple[str, ...]


class Context:
    """The request's condition keys, looked up case-insensitively."""

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        self._values: dict[str, ContextValue] = {}
        for key, value in (values or {}).items():
            normal = _normal(value)
            if normal is not None:
                self._values[key.lower()] = normal

    def get(self, key: str) -> ContextValue | None:
        return self._values.get(key.lower())

    def single(self, key: str) -> str | None:
        """A key's value when it has exactly one (what a policy variable may stand for)."""
        value = self.get(key)
        if isinstance(value, tuple):
            return value[0] if len(value) == 1 else None
        return value


def _normal(value: object) -> ContextValue | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Iterable):
        return tuple(str(item) for item in value)
    return str(value)


# --- patterns and policy variables ----------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


def compile_pattern(
    text: str, context: Context | None, *, wildcards: bool, ignore_case: bool = False
) -> re.Pattern[str] | None:
    """A regular expression matching the whole of what ``text`` matches: ``*`` any run of characters
    and ``?`` one character when ``wildcards``; ``${key}`` (with ``context``, i.e. policy version
    2012-10-17) the key's value taken literally, ``${key, 'default'}`` the default when the key is
    missing, ``${*}``/``${?}``/``${$}`` those characters literally. None when a variable has no value:
    IAM treats such a pattern as matching nothing."""
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(text) if context is not None else ():
        parts.append(_glob(text[position : match.start()], wildcards))
        position = match.end()
        inner = match.group(1).strip()
        if inner in _SPECIAL:
            parts.append(re.escape(_SPECIAL[inner]))
            continue
        key, _, default = inner.partition(",")
        value = context.single(key.strip()) if context is not None else None
        if value is None:
            default = default.strip()
            if len(default) >= 2 and default[0] == default[-1] == "'":
                value = default[1:-1]
        if value is None:
            return None
        parts.append(re.escape(value))
    parts.append(_glob(text[position:], wildcards))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _glob(text: str, wildcards: bool) -> str:
    if not wildcards:
        return re.escape(text)
    return "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text)


@functools.lru_cache(maxsize=4096)
def _plain(text: str, wildcards: bool, ignore_case: bool) -> re.Pattern[str] | None:
    return compile_pattern(text, None, wildcards=wildcards, ignore_case=ignore_case)


def matches(
    pattern: str,
    value: str,
    context: Context | None = None,
    *,
    wildcards: bool = True,
    ignore_case: bool = False,
) -> bool:
    """Whether ``value`` matches ``pattern`` (policy variables resolved from ``context``)."""
    if context is None or "${" not in pattern:
        compiled = _plain(pattern, wildcards, ignore_case)
    else:
        compiled = compile_pattern(pattern, context, wildcards=wildcards, ignore_case=ignore_case)
    return compiled is not None and compiled.fullmatch(value) is not None


def arn_matches(pattern: str, value: str, context: Context | None = None) -> bool:
    """ArnEquals/ArnLike: each of the ARN's six colon-separated parts matched on its own (the last may
    hold colons), wildcards allowed in each."""
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), value.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return False
    return all(matches(w, a, context) for w, a in zip(wanted, actual, strict=True))


# --- operators ------------------------------------------------------------------------------------------

# Each operator as (test of one request value against one policy value, whether the operator is the
# negation of that test: true when no policy value passes).
_Test = Callable[[str, str, Context | None], bool]


def _numeric(compare: Callable[[Any, Any], bool]) -> _Test:
    def test(actual: str, wanted: str, _: Context | None) -> bool:
        try:
            return compare(float(actual), float(wanted))
        except ValueError:
            return False

    return test


def _date(compare: Callable[[Any, Any], bool]) -> _Test:
    def test(actual: str, wanted: str, _: Context | None) -> bool:
        left, right = parse_date(actual), parse_date(wanted)
        return left is not None and right is not None and compare(left, right)

    return test


def parse_date(text: str) -> datetime | None:
    """A date as IAM accepts one: ISO 8601 (a date, or a time with ``Z`` or an offset) or epoch seconds."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ip(actual: str, wanted: str, _: Context | None) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _binary(actual: str, wanted: str, _: Context | None) -> bool:
    try:
        return base64.b64decode(actual, validate=True) == base64.b64decode(wanted, validate=True)
    except (ValueError, binascii.Error):
        return False


def _equals(actual: str, wanted: str, context: Context | None) -> bool:
    return matches(wanted, actual, context, wildcards=False)


def _equals_ignore_case(actual: str, wanted: str, context: Context | None) -> bool:
    return matches(wanted, actual, context, wildcards=False, ignore_case=True)


def _like(actual: str, wanted: str, context: Context | None) -> bool:
    return matches(wanted, actual, context)


def _arn(actual: str, wanted: str, context: Context | None) -> bool:
    return arn_matches(wanted, actual, context)


def _bool(actual: str, wanted: str, _: Context | None) -> bool:
    return actual.lower() == wanted.lower()


_ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

TESTS: dict[str, tuple[_Test, bool]] = {
    "StringEquals": (_equals, False),
    "StringNotEquals": (_equals, True),
    "StringEqualsIgnoreCase": (_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_equals_ignore_case, True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "ArnEquals": (_arn, False),
    "ArnLike": (_arn, False),
    "ArnNotEquals": (_arn, True),
    "ArnNotLike": (_arn, True),
    "Bool": (_bool, False),
    "BinaryEquals": (_binary, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    **{f"Numeric{name}": (_numeric(compare), False) for name, compare in _ORDERED.items()},
    "NumericNotEquals": (_numeric(_ORDERED["Equals"]), True),
    **{f"Date{name}": (_date(compare), False) for name, compare in _ORDERED.items()},
    "DateNotEquals": (_date(_ORDERED["Equals"]), True),
}

# Policy variables are substituted in the values of these operators only.
_VARIABLES_IN = {"String", "Arn"}


def condition_holds(condition: Condition, context: Context, variables: bool = True) -> bool:
    """Whether one condition test holds for the request's ``context``. ``variables``: the policy's
    version is 2012-10-17, so ``${...}`` in values are policy variables."""
    operator = _operator(condition.operator)
    actual = context.get(condition.key)
    if operator.base == "Null":
        missing = actual is None or actual == ()
        return any(value.lower() == str(missing).lower() for value in condition.values)
    values: Sequence[str] = (actual,) if isinstance(actual, str) else (actual or ())
    if not values:
        if operator.set_operator == "ForAllValues":
            return True
        if operator.set_operator == "ForAnyValue":
            return False
        return operator.if_exists or TESTS[operator.base][1]
    test, negated = TESTS[operator.base]
    substitute = (
        context if variables and any(operator.base.startswith(kind) for kind in _VARIABLES_IN) else None
    )

    def one(value: str) -> bool:
        passed = any(test(value, wanted, substitute) for wanted in condition.values)
        return not passed if negated else passed

    if operator.set_operator == "ForAllValues":
        return all(one(value) for value in values)
    if operator.set_operator == "ForAnyValue" or not negated:
        return any(one(value) for value in values)
    return all(one(value) for value in values)


@functools.lru_cache(maxsize=256)
def _operator(text: str) -> Operator:
    return parse_operator(text)


def conditions_hold(conditions: Iterable[Condition], context: Context, variables: bool = True) -> bool:
    """Whether every condition of a statement holds (an empty block always does)."""
    return all(condition_holds(condition, context, variables) for condition in conditions)
