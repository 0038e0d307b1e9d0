"""AWS's event-filtering language, case by case from AWS's documented examples (Lambda event filtering,
EventBridge event patterns' comparison operators)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.events.filtering import INVALID_PATTERN, FilterSet, matches, parse_pattern

# (pattern, record, kept?)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # Exact values: strings, numbers, booleans, null, empty string.
    ("string equal", {"City": ["Seattle"]}, {"City": "Seattle"}, True),
    ("string differs", {"City": ["Seattle"]}, {"City": "Boston"}, False),
    ("string is case sensitive", {"City": ["Seattle"]}, {"City": "seattle"}, False),
    ("one of several values", {"Region": ["us-east-1", "eu-west-1"]}, {"Region": "eu-west-1"}, True),
    ("number equal", {"Count": [5]}, {"Count": 5}, True),
    ("number equal across int and float", {"Count": [5]}, {"Count": 5.0}, True),
    ("number does not equal its string", {"Count": [5]}, {"Count": "5"}, False),
    ("string does not equal a number", {"Count": ["5"]}, {"Count": 5}, False),
    ("boolean true", {"Active": [True]}, {"Active": True}, True),
    ("boolean false is not true", {"Active": [True]}, {"Active": False}, False),
    ("boolean is not number 1", {"Active": [True]}, {"Active": 1}, False),
    ("null matches null", {"UserID": [None]}, {"UserID": None}, True),
    ("null does not match a missing key", {"UserID": [None]}, {}, False),
    ("empty string", {"LastName": [""]}, {"LastName": ""}, True),
    ("empty string is not null", {"LastName": [""]}, {"LastName": None}, False),
    ("missing key never equals", {"City": ["Seattle"]}, {"Town": "Seattle"}, False),
    # Arrays in the record: any element.
    ("array value, any element", {"Color": ["red"]}, {"Color": ["blue", "red"]}, True),
    ("array value, no element", {"Color": ["red"]}, {"Color": ["blue", "green"]}, False),
    # Nested objects, as in AWS's SQS example (body decoded from JSON).
    (
        "nested key",
        {"body": {"RequestCode": ["BBBB"]}},
        {"body": {"RequestCode": "BBBB", "Other": 1}},
        True,
    ),
    ("nested key differs", {"body": {"RequestCode": ["BBBB"]}}, {"body": {"RequestCode": "AAAA"}}, False),
    ("nested below a plain string body", {"body": {"RequestCode": ["BBBB"]}}, {"body": "BBBB"}, False),
    (
        "nested in a list of objects",
        {"items": {"kind": ["book"]}},
        {"items": [{"kind": "pen"}, {"kind": "book"}]},
        True,
    ),
    (
        "every key must match",
        {"a": ["1"], "b": ["2"]},
        {"a": "1", "b": "3"},
        False,
    ),
    # Prefix and suffix, plain and ignoring case.
    ("prefix", {"Region": [{"prefix": "us-"}]}, {"Region": "us-east-1"}, True),
    ("prefix misses", {"Region": [{"prefix": "us-"}]}, {"Region": "eu-west-1"}, False),
    ("prefix on a number", {"Code": [{"prefix": "1"}]}, {"Code": 123}, False),
    (
        "prefix ignoring case",
        {"Name": [{"prefix": {"equals-ignore-case": "ALI"}}]},
        {"Name": "alice"},
        True,
    ),
    ("suffix", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.png"}, True),
    ("suffix misses", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.jpg"}, False),
    (
        "suffix ignoring case",
        {"FileName": [{"suffix": {"equals-ignore-case": ".PNG"}}]},
        {"FileName": "image.png"},
        True,
    ),
    ("equals-ignore-case", {"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "ALICE"}, True),
    ("equals-ignore-case misses", {"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "bob"}, False),
    # Wildcard.
    (
        "wildcard",
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-east-1:123:event-bus/default"},
        True,
    ),
    ("wildcard misses", {"File": [{"wildcard": "dir/*.png"}]}, {"File": "dir/a.jpg"}, False),
    ("wildcard escaped star", {"File": [{"wildcard": "a\\*b"}]}, {"File": "a*b"}, True),
    ("wildcard escaped star is literal", {"File": [{"wildcard": "a\\*b"}]}, {"File": "axxb"}, False),
    # anything-but.
    ("anything-but value", {"State": [{"anything-but": "initializing"}]}, {"State": "running"}, True),
    (
        "anything-but value excluded",
        {"State": [{"anything-but": "initializing"}]},
        {"State": "initializing"},
        False,
    ),
    (
        "anything-but list",
        {"State": [{"anything-but": ["stopped", "overloaded"]}]},
        {"State": "stopped"},
        False,
    ),
    ("anything-but numbers", {"x": [{"anything-but": [100, 200]}]}, {"x": 300}, True),
    ("anything-but number excluded", {"x": [{"anything-but": [100, 200]}]}, {"x": 100}, False),
    ("anything-but missing key", {"State": [{"anything-but": "x"}]}, {}, False),
    ("anything-but prefix", {"Type": [{"anything-but": {"prefix": "init"}}]}, {"Type": "running"}, True),
    (
        "anything-but prefix excluded",
        {"Type": [{"anything-but": {"prefix": "init"}}]},
        {"Type": "initializing"},
        False,
    ),
    ("anything-but suffix", {"File": [{"anything-but": {"suffix": ".txt"}}]}, {"File": "a.txt"}, False),
    (
        "anything-but wildcard",
        {"File": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"File": "/usr/bin/x"},
        True,
    ),
    (
        "anything-but wildcard excluded",
        {"File": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"File": "/usr/lib/x"},
        False,
    ),
    (
        "anything-but equals-ignore-case",
        {"s": [{"anything-but": {"equals-ignore-case": ["A", "B"]}}]},
        {"s": "a"},
        False,
    ),
    # Numeric ranges.
    ("numeric greater", {"Price": [{"numeric": [">", 10]}]}, {"Price": 11}, True),
    ("numeric greater misses", {"Price": [{"numeric": [">", 10]}]}, {"Price": 10}, False),
    ("numeric range", {"Price": [{"numeric": [">", 0, "<=", 5]}]}, {"Price": 5}, True),
    ("numeric range above", {"Price": [{"numeric": [">", 0, "<=", 5]}]}, {"Price": 5.5}, False),
    ("numeric equals", {"Price": [{"numeric": ["=", 100]}]}, {"Price": 100.0}, True),
    ("numeric >= and <", {"p": [{"numeric": [">=", 1, "<", 2]}]}, {"p": 1}, True),
    ("numeric on a string", {"Price": [{"numeric": [">", 10]}]}, {"Price": "11"}, False),
    ("numeric in an array", {"p": [{"numeric": ["<", 0]}]}, {"p": [5, -1]}, True),
    # exists.
    ("exists true", {"ProductName": [{"exists": True}]}, {"ProductName": "x"}, True),
    ("exists true, missing", {"ProductName": [{"exists": True}]}, {}, False),
    ("exists true, null value", {"ProductName": [{"exists": True}]}, {"ProductName": None}, True),
    ("exists false", {"ProductName": [{"exists": False}]}, {"Other": 1}, True),
    ("exists false, present", {"ProductName": [{"exists": False}]}, {"ProductName": "x"}, False),
    ("exists false below a missing parent", {"a": {"b": [{"exists": False}]}}, {}, True),
    ("exists false below a scalar parent", {"a": {"b": [{"exists": False}]}}, {"a": "x"}, True),
    # cidr.
    ("cidr", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
    ("cidr outside", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
    # $or.
    (
        "$or first branch",
        {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
        {"Location": "New York", "Day": "Sunday"},
        True,
    ),
    (
        "$or second branch",
        {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
        {"Location": "Paris", "Day": "Monday"},
        True,
    ),
    (
        "$or no branch",
        {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
        {"Location": "Paris", "Day": "Sunday"},
        False,
    ),
    (
        "$or nested with other keys",
        {"source": ["a"], "$or": [{"x": [1]}, {"y": [{"numeric": [">", 5]}]}]},
        {"source": "a", "y": 6},
        True,
    ),
    (
        "several matchers in one list are OR'ed",
        {"Price": [{"numeric": ["<", 0]}, {"numeric": [">", 100]}, "free"]},
        {"Price": "free"},
        True,
    ),
]


@pytest.mark.parametrize(("pattern", "record", "kept"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pattern_keeps_or_drops_record(pattern: dict[str, Any], record: dict[str, Any], kept: bool) -> None:
    checked = parse_pattern(json.dumps(pattern))
    assert matches(checked, record) is kept


INVALID = [
    ("not json", "{City: Seattle"),
    ("a plain string", '"Seattle"'),
    ("a list", '["Seattle"]'),
    ("a leaf that is not a list", '{"City": "Seattle"}'),
    ("a number leaf", '{"City": 5}'),
    ("an empty list", '{"City": []}'),
    ("an empty object", "{}"),
    ("an unknown operator", '{"City": [{"contains": "x"}]}'),
    ("two operators in one matcher", '{"City": [{"prefix": "a", "suffix": "b"}]}'),
    ("exists not a boolean", '{"City": [{"exists": "yes"}]}'),
    ("numeric without operands", '{"n": [{"numeric": [">"]}]}'),
    ("numeric with an unknown operator", '{"n": [{"numeric": ["!=", 1]}]}'),
    ("numeric with a string bound", '{"n": [{"numeric": [">", "1"]}]}'),
    ("numeric with two lower bounds", '{"n": [{"numeric": [">", 1, ">=", 2]}]}'),
    ("numeric with an empty range", '{"n": [{"numeric": [">", 5, "<", 1]}]}'),
    ("prefix of a number", '{"n": [{"prefix": 1}]}'),
    ("prefix with an unknown option", '{"n": [{"prefix": {"ignore": "a"}}]}'),
    ("consecutive wildcards", '{"n": [{"wildcard": "a**b"}]}'),
    ("anything-but of an object value", '{"n": [{"anything-but": {"numeric": [">", 1]}}]}'),
    ("anything-but of an empty list", '{"n": [{"anything-but": []}]}'),
    ("$or with one branch", '{"$or": [{"a": ["1"]}]}'),
    ("$or not a list", '{"$or": {"a": ["1"]}}'),
    ("a bad cidr", '{"ip": [{"cidr": "10.0.0.0/99"}]}'),
    ("recorded: key with =", '{"eventName": ["INSERT"=123}'),
]


@pytest.mark.parametrize("pattern", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_pattern_is_refused_with_aws_wording(pattern: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        parse_pattern(pattern)
    assert caught.value.message == INVALID_PATTERN
    assert caught.value.code == "InvalidParameterValueException"


def test_missing_pattern_is_refused() -> None:
    with pytest.raises(InvalidParameterValueException):
        FilterSet.from_criteria({"Filters": [{}]})


def test_filters_are_ored() -> None:
    filters = FilterSet.from_criteria({"Filters": [{"Pattern": '{"a": ["1"]}'}, {"Pattern": '{"b": ["2"]}'}]})
    assert filters.matches({"a": "1"})
    assert filters.matches({"b": "2"})
    assert not filters.matches({"a": "2", "b": "1"})


def test_no_filters_keep_everything() -> None:
    assert FilterSet.from_criteria(None).matches({"anything": 1})
    assert FilterSet.from_criteria({"Filters": []}).matches({})


def test_more_than_five_filters_are_refused() -> None:
    criteria = {"Filters": [{"Pattern": '{"a": ["1"]}'}] * 6}
    with pytest.raises(InvalidParameterValueException):
        FilterSet.from_criteria(criteria)


def test_a_pattern_nested_past_the_parsers_depth_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        parse_pattern('{"a":' * 10_000 + '["x"]' + "}" * 10_000)
    assert caught.value.message == INVALID_PATTERN
