"""Validation against botocore's model, worded as AWS words it."""

from __future__ import annotations

import pytest

from lambdad.api.service_model import lambda_model
from lambdad.api.validation import validate
from lambdad.errors import ValidationException


def create_input() -> object:
    return lambda_model().operation_model("CreateFunction").input_shape


def valid_create(**changes: object) -> dict[str, object]:
    params: dict[str, object] = {
        "FunctionName": "f",
        "Role": "arn:aws:iam::123456789012:role/r",
        "Code": {"ZipFile": b"zip"},
    }
    params.update(changes)
    return params


def message(params: dict[str, object]) -> str:
    with pytest.raises(ValidationException) as excinfo:
        validate(create_input(), params)  # type: ignore[arg-type]
    return excinfo.value.message


def test_valid_input_passes() -> None:
    validate(create_input(), valid_create(MemorySize=10240, Timeout=900))  # type: ignore[arg-type]


def test_missing_required_member_is_null() -> None:
    params = valid_create()
    del params["Role"]
    assert message(params) == (
        "1 validation error detected: Value null at 'role' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_several_errors_are_counted_and_joined() -> None:
    text = message(valid_create(MemorySize=100, Timeout=0))
    assert text.startswith("2 validation errors detected: Value ")
    parts = text.removeprefix("2 validation errors detected: ").split("; ")
    assert sorted(parts) == [
        "Value '0' at 'timeout' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        "Value '100' at 'memorySize' failed to satisfy constraint: Member must have value greater than or "
        "equal to 128",
    ]


def test_aws_bounds_override_the_models_wider_ones() -> None:
    assert message(valid_create(Timeout=901)).endswith("Member must have value less than or equal to 900")
    assert message(valid_create(MemorySize=10241)).endswith(
        "Member must have value less than or equal to 10240"
    )


def test_string_length_and_pattern() -> None:
    assert message(valid_create(FunctionName="x" * 141)).endswith(
        "Member must have length less than or equal to 140"
    )
    assert "Member must satisfy regular expression pattern" in message(valid_create(FunctionName="bad name"))


def test_nested_members_get_dotted_paths() -> None:
    text = message(valid_create(EphemeralStorage={"Size": 100}))
    assert "Value '100' at 'ephemeralStorage.size' failed to satisfy constraint" in text


def test_sensitive_values_are_not_echoed() -> None:
    text = message(valid_create(Environment={"Variables": {"1bad": "secret"}}))
    assert "secret" not in text
    assert (
        "Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint"
        in text
    )


def test_runtime_enum_is_left_to_the_service() -> None:
    validate(create_input(), valid_create(Runtime="PYTHON3.9"))  # type: ignore[arg-type]
