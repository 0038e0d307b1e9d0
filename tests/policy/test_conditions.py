"""Condition operators, set operators, missing keys and policy variables, as IAM's "Condition
operators", "Single-valued vs. multivalued context keys" and "Policy variables" pages describe them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lambdad.policy import Context
from lambdad.policy.conditions import arn_matches, condition_holds, matches
from lambdad.policy.document import Condition


def holds(operator: str, key: str, values: Any, context: dict[str, Any], variables: bool = True) -> bool:
    listed = tuple(values) if isinstance(values, list) else (values,)
    return condition_holds(Condition(operator, key, listed), Context(context), variables)


@pytest.mark.parametrize(
    ("operator", "values", "actual", "expected"),
    [
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "ABC", False),
        ("StringEquals", ["x", "abc"], "abc", True),  # values OR
        ("StringNotEquals", ["x", "y"], "abc", True),
        ("StringNotEquals", ["x", "abc"], "abc", False),
        ("StringEqualsIgnoreCase", "ABC", "abc", True),
        ("StringNotEqualsIgnoreCase", "ABC", "abc", False),
        ("StringLike", "a*c", "abbbc", True),
        ("StringLike", "a?c", "abbc", False),
        ("StringLike", "a?c", "abc", True),
        ("StringLike", "a.c", "abc", False),  # only * and ? are wildcards
        ("StringNotLike", "a*", "abc", False),
        ("StringNotLike", "b*", "abc", True),
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", "10", "11", True),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "10", False),
        ("NumericGreaterThanEquals", "10", "10", True),
        ("NumericEquals", "10", "ten", False),
        ("DateGreaterThan", "2020-04-01T00:00:00Z", "2026-12-06T10:00:00Z", True),
        ("DateLessThan", "2020-04-01T00:00:00Z", "2026-12-06T10:00:00Z", False),
        ("DateEquals", "2020-04-01T00:00:00Z", "1585699200", True),  # epoch seconds
        ("DateLessThanEquals", "2020-04-01", "2020-04-01T00:00:00Z", True),
        ("DateNotEquals", "2020-04-01T00:00:00Z", "2021-01-01T00:00:00Z", True),
        ("Bool", "true", "true", True),
        ("Bool", "true", "false", False),
        ("BinaryEquals", "QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWU=", True),
        ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
        ("IpAddress", ["10.0.0.0/8", "2001:db8::/32"], "2001:db8::1", True),
        ("IpAddress", "203.0.113.0/24", "198.51.100.1", False),
        ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        ("ArnEquals", "arn:aws:sns:*:123456789012:topic", "arn:aws:sns:us-east-1:123456789012:topic", True),
        (
            "ArnLike",
            "arn:aws:lambda:*:*:function:*",
            "arn:aws:lambda:us-east-1:123456789012:function:f:live",
            True,
        ),
        ("ArnLike", "arn:aws:s3:::bucket", "arn:aws:s3:::bucket", True),
        ("ArnLike", "arn:aws:s3:::bucket", "arn:aws:s3:::other", False),
        ("ArnLike", "arn:aws:s3:::*", "not-an-arn", False),
        ("ArnNotLike", "arn:aws:s3:::bucket*", "arn:aws:s3:::other", True),
        ("ArnNotEquals", "arn:aws:s3:::bucket", "arn:aws:s3:::bucket", False),
    ],
)
def test_operators(operator: str, values: Any, actual: str, expected: bool) -> None:
    assert holds(operator, "k:key", values, {"k:key": actual}) is expected


def test_keys_are_case_insensitive() -> None:
    assert holds("StringEquals", "AWS:SourceAccount", "123456789012", {"aws:sourceaccount": "123456789012"})


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringNotEquals", True),  # a negated operator holds for a missing key
        ("ArnNotLike", True),
        ("NotIpAddress", True),
        ("StringEqualsIfExists", True),
        ("NumericLessThanIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAllValues:StringEquals", True),
    ],
)
def test_a_missing_key(operator: str, expected: bool) -> None:
    assert holds(operator, "aws:SourceArn", "arn:aws:s3:::b", {}) is expected


def test_if_exists_tests_a_present_key() -> None:
    assert not holds("StringEqualsIfExists", "ec2:InstanceType", "t2.micro", {"ec2:InstanceType": "m5.large"})


def test_null_asks_whether_the_key_is_missing() -> None:
    assert holds("Null", "aws:TokenIssueTime", "true", {})
    assert not holds("Null", "aws:TokenIssueTime", "true", {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"})
    assert holds("Null", "aws:TokenIssueTime", "false", {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"})


def test_set_operators_on_multivalued_keys() -> None:
    tags = {"aws:TagKeys": ("env", "team")}
    assert holds("ForAllValues:StringEquals", "aws:TagKeys", ["env", "team", "cost"], tags)
    assert not holds("ForAllValues:StringEquals", "aws:TagKeys", ["env"], tags)
    assert holds("ForAnyValue:StringEquals", "aws:TagKeys", ["env"], tags)
    assert not holds("ForAnyValue:StringEquals", "aws:TagKeys", ["cost"], tags)
    assert holds("ForAnyValue:StringNotEquals", "aws:TagKeys", ["env"], tags)  # "team" is not env
    assert not holds("ForAllValues:StringNotEquals", "aws:TagKeys", ["env"], tags)
    assert holds(
        "ForAllValues:StringLike",
        "lambda:Layer",
        "arn:aws:lambda:*:111111111111:layer:*",
        {"lambda:Layer": ("arn:aws:lambda:us-east-1:111111111111:layer:a:1",)},
    )
    assert holds("ForAllValues:StringEquals", "aws:TagKeys", ["x"], {"aws:TagKeys": ()})  # empty set


def test_multivalued_keys_without_a_set_operator() -> None:
    layers = {"lambda:Layer": ("arn:a", "arn:b")}
    assert holds("StringEquals", "lambda:Layer", "arn:a", layers)  # some value matches
    assert not holds("StringNotEquals", "lambda:Layer", "arn:a", layers)  # a negation holds for none


def test_policy_variables_in_condition_values() -> None:
    context = {"aws:username": "carlos", "s3:prefix": "home/carlos/x"}
    assert holds("StringLike", "s3:prefix", "home/${aws:username}/*", context)
    assert not holds("StringLike", "s3:prefix", "home/${aws:username}/*", {**context, "aws:username": "ana"})
    assert not holds("StringLike", "s3:prefix", "home/${aws:username}/*", context, variables=False)
    # a variable with no value matches nothing; a default stands in for it
    assert not holds("StringLike", "s3:prefix", "home/${aws:userid}/*", context)
    assert holds("StringLike", "s3:prefix", "home/${aws:userid, 'carlos'}/*", context)
    # Numeric operators take no variables
    assert not holds("NumericEquals", "n:n", "${n:m}", {"n:n": "1", "n:m": "1"})


def test_special_characters_stand_for_themselves() -> None:
    assert matches("a${*}b", "a*b", Context())
    assert not matches("a${*}b", "axxb", Context())
    assert matches("${?}${$}", "?$", Context())
    assert matches("a*b", "a*b")  # a plain * still matches itself among others


def test_arns_are_matched_part_by_part() -> None:
    assert arn_matches("arn:aws:iam::*:role/admin", "arn:aws:iam::123456789012:role/admin")
    assert not arn_matches("arn:aws:iam::*:role/admin", "arn:aws:iam::123456789012:role/admin2")
    assert not arn_matches("arn:aws:lambda:*", "arn:aws:lambda:us-east-1:1:function:f")  # five parts short


def test_dates_from_the_context_as_datetimes() -> None:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    assert holds("DateLessThan", "aws:CurrentTime", "2027-01-01T00:00:00Z", {"aws:CurrentTime": now})
    assert not holds("DateLessThan", "aws:CurrentTime", "2026-01-01T00:00:00Z", {"aws:CurrentTime": now})


def test_booleans_from_the_context() -> None:
    assert holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": False})
    assert not holds("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": False})
