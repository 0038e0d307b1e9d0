"""lambdad's answers against answers recorded from real AWS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.recordings import differences, recorded
from tests.support import ROLE, make_zip

pytestmark = pytest.mark.e2e
API = "test_lambda_api.snapshot.json"


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_function_lifecycle_answers_match_aws(server: Any) -> None:
    # The recording's account is 111111111111; compare under the same account by ARN shape only.
    client = server.client()
    created = client.create_function(
        FunctionName="recorded-lifecycle",
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
        MemorySize=256,
        Timeout=5,
    )
    expected = recorded(API, "TestLambdaFunction::test_function_lifecycle", "create_response")
    assert differences(strip(created), strip(expected["CreateFunctionResponse"])) == []
    client.get_waiter("function_active_v2").wait(
        FunctionName="recorded-lifecycle", WaiterConfig={"Delay": 0.1}
    )
    got = client.get_function(FunctionName="recorded-lifecycle")
    expected_get = recorded(API, "TestLambdaFunction::test_function_lifecycle", "get_function_response")
    assert differences(strip(got), strip(expected_get)) == []
    updated = client.update_function_configuration(
        FunctionName="recorded-lifecycle",
        Runtime="python3.11",
        Timeout=10,
        MemorySize=512,
        Description="Changed-Description",
        Environment={"Variables": {"ENV_A": "a"}},
    )
    expected_update = recorded(
        API, "TestLambdaFunction::test_function_lifecycle", "update_func_conf_response"
    )
    assert differences(strip(updated), strip(expected_update)) == []
    client.get_waiter("function_updated_v2").wait(
        FunctionName="recorded-lifecycle", WaiterConfig={"Delay": 0.1}
    )
    after = client.get_function(FunctionName="recorded-lifecycle")
    expected_after = recorded(
        API, "TestLambdaFunction::test_function_lifecycle", "get_function_response_postupdate"
    )
    assert differences(strip(after), strip(expected_after)) == []


def test_missing_function_error_matches_aws(client: Any) -> None:
    expected = recorded(API, "TestLambdaTag::test_tag_nonexisting_resource", "not_found_exception_list")
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.list_tags(Resource="arn:aws:lambda:us-east-1:000000000000:function:never-created")
    answer = excinfo.value.response
    assert answer["Error"]["Code"] == expected["Error"]["Code"]
    assert answer["Type"] == expected["Type"]
    assert differences(answer["Error"]["Message"], expected["Error"]["Message"]) == []
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == expected["ResponseMetadata"]["HTTPStatusCode"]


def test_comparison_notices_missing_extra_and_changed_members() -> None:
    expected = {
        "State": "Active",
        "FunctionArn": "arn:<partition>:lambda:<region>:111111111111:function:<f:1>",
    }
    good = {"State": "Active", "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f"}
    assert differences(good, expected) == []
    assert differences({**good, "State": "Pending"}, expected) == [".State: expected 'Active', got 'Pending'"]
    assert differences({**good, "Extra": 1}, expected) == [".Extra: not in AWS's answer"]
    assert differences({"State": "Active"}, expected) == [".FunctionArn: missing"]
    assert differences({**good, "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:layer:f"}, expected)
