"""Recursion and runtime management configs end to end, compared with AWS's recorded answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.invoke_support import unique
from tests.recordings import differences, recorded
from tests.support import create_function

pytestmark = pytest.mark.e2e
API = "test_lambda_api.snapshot.json"
RECURSION = "TestLambdaRecursion::"


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_recursion_defaults_to_terminate_and_takes_allow(client: Any) -> None:
    name = unique("recursion")
    create_function(client, name)
    default = client.get_function_recursion_config(FunctionName=name)
    wanted = recorded(
        API,
        RECURSION + "test_put_function_recursion_config_default_terminate",
        "get_recursion_default_terminate_response",
    )
    assert differences(strip(default), strip(wanted)) == []
    test = RECURSION + "test_put_function_recursion_config_allow"
    put = client.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    assert differences(strip(put), strip(recorded(API, test, "put_recursion_config_response"))) == []
    got = client.get_function_recursion_config(FunctionName=name)
    assert differences(strip(got), strip(recorded(API, test, "get_recursion_config_response"))) == []
    arn = client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert client.get_function_recursion_config(FunctionName=arn)["RecursiveLoop"] == "Allow"


def test_recursion_errors(client: Any, unvalidated_client: Any) -> None:
    name = unique("recursion-errors")
    create_function(client, name)
    with pytest.raises(client.exceptions.ClientError) as error:
        unvalidated_client.put_function_recursion_config(FunctionName=name, RecursiveLoop="InvalidValue")
    wanted = recorded(
        API,
        RECURSION + "test_put_function_recursion_config_invalid_value",
        "put_recursion_invalid_value_error",
    )
    assert differences(error.value.response["Error"], wanted["Error"]) == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_recursion_config(FunctionName="doesnotexist")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.put_function_recursion_config(FunctionName="doesnotexist", RecursiveLoop="Allow")


def test_runtime_management_modes(client: Any) -> None:
    name = unique("runtime-mgmt")
    create_function(client, name)
    config = client.get_function(FunctionName=name)["Configuration"]
    arn = config["FunctionArn"]
    default = strip(client.get_runtime_management_config(FunctionName=name))
    assert default == {"UpdateRuntimeOn": "Auto", "FunctionArn": arn}

    runtime_arn = config["RuntimeVersionConfig"]["RuntimeVersionArn"]
    manual = strip(
        client.put_runtime_management_config(
            FunctionName=name, UpdateRuntimeOn="Manual", RuntimeVersionArn=runtime_arn
        )
    )
    assert manual == {"UpdateRuntimeOn": "Manual", "FunctionArn": arn, "RuntimeVersionArn": runtime_arn}
    assert strip(client.get_runtime_management_config(FunctionName=name)) == manual

    on_update = strip(
        client.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="FunctionUpdate")
    )
    assert on_update == {"UpdateRuntimeOn": "FunctionUpdate", "FunctionArn": arn}
    assert strip(client.get_runtime_management_config(FunctionName=name)) == on_update

    version = client.publish_version(FunctionName=name)["Version"]
    on_version = strip(client.get_runtime_management_config(FunctionName=name, Qualifier=version))
    assert on_version == {"UpdateRuntimeOn": "Auto", "FunctionArn": f"{arn}:{version}"}


def test_runtime_management_rules(client: Any) -> None:
    name = unique("runtime-rules")
    create_function(client, name)
    runtime_arn = client.get_function(FunctionName=name)["Configuration"]["RuntimeVersionConfig"][
        "RuntimeVersionArn"
    ]
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="Manual")
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_runtime_management_config(
            FunctionName=name, UpdateRuntimeOn="Auto", RuntimeVersionArn=runtime_arn
        )
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_runtime_management_config(
            FunctionName=name,
            UpdateRuntimeOn="Manual",
            RuntimeVersionArn=runtime_arn.replace("us-east-1", "eu-west-1"),
        )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_runtime_management_config(FunctionName="doesnotexist")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_runtime_management_config(FunctionName=name, Qualifier="9")
    assert client.get_runtime_management_config(FunctionName=name)["UpdateRuntimeOn"] == "Auto"
