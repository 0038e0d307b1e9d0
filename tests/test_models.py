"""Domain types: function references, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdad.models import CodePackage, FunctionRef, aws_timestamp, parse_function_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f", FunctionRef("f")),
        ("f:prod", FunctionRef("f", "prod")),
        ("f:$LATEST", FunctionRef("f", "$LATEST")),
        ("123456789012:function:f", FunctionRef("f", None, "123456789012")),
        ("123456789012:f", FunctionRef("f", None, "123456789012")),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:f:3",
            FunctionRef("f", "3", "123456789012", "eu-west-1", is_arn=True),
        ),
    ],
)
def test_function_references_parse(text: str, expected: FunctionRef) -> None:
    assert parse_function_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "my-function!",
        "function:f",
        "arn:aws:lambda::123456789012:function:f",
        "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
        "arn:aws:ec2:us-east-1:123456789012:instance:i",
    ],
)
def test_malformed_references_are_rejected(text: str) -> None:
    assert parse_function_ref(text) is None


def test_timestamps_use_aws_format() -> None:
    assert (
        aws_timestamp(datetime(2026, 11, 25, 2, 36, 9, 123456, tzinfo=UTC)) == "2026-11-25T02:36:09.123+0000"
    )


def test_code_sha256_is_base64_of_the_digest() -> None:
    package = CodePackage("00" * 31 + "ff", 1, 1)
    assert package.code_sha256 == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8="
