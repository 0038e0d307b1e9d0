"""The default execution role policy and AWS's wording of a refusal."""

from __future__ import annotations

import pytest

from lambdad.api.authorization import action_of, authorize, resource_of
from lambdad.errors import AccessDeniedException
from lambdad.models import Caller, Scope

SCOPE = Scope("123456789012", "eu-west-1")
CALLER = Caller(
    "arn:aws:lambda:eu-west-1:123456789012:function:worker:live", "arn:aws:iam::123456789012:role/a/b/runner"
)


def test_the_principal_is_the_role_session_named_after_the_function() -> None:
    assert CALLER.principal == "arn:aws:sts::123456789012:assumed-role/runner/worker"


@pytest.mark.parametrize(
    "operation", ["Invoke", "InvokeWithResponseStream", "InvokeAsync", "GetAccountSettings"]
)
def test_the_default_policy_allows_invoking_and_the_account_limits(operation: str) -> None:
    authorize(CALLER, "lambda", operation, {"FunctionName": "other"}, SCOPE)


def test_a_refusal_names_the_role_session_the_action_and_the_resource() -> None:
    with pytest.raises(AccessDeniedException) as refused:
        authorize(CALLER, "lambda", "GetFunction", {"FunctionName": "other", "Qualifier": "2"}, SCOPE)
    assert refused.value.status == 403
    assert refused.value.message == (
        "User: arn:aws:sts::123456789012:assumed-role/runner/worker is not authorized to perform: "
        "lambda:GetFunction on resource: arn:aws:lambda:eu-west-1:123456789012:function:other:2 because no "
        "identity-based policy allows the lambda:GetFunction action"
    )


@pytest.mark.parametrize(
    ("service", "operation", "params", "resource"),
    [
        ("lambda", "ListFunctions", {}, "*"),
        (
            "lambda",
            "GetFunction",
            {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f:live"},
            "arn:aws:lambda:us-east-1:123456789012:function:f:live",
        ),
        (
            "lambda",
            "TagResource",
            {"Resource": "arn:aws:lambda:eu-west-1:123456789012:function:f"},
            "arn:aws:lambda:eu-west-1:123456789012:function:f",
        ),
        (
            "lambda",
            "GetLayerVersion",
            {"LayerName": "l", "VersionNumber": 3},
            "arn:aws:lambda:eu-west-1:123456789012:layer:l:3",
        ),
        (
            "lambda",
            "DeleteEventSourceMapping",
            {"UUID": "u-1"},
            "arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:u-1",
        ),
        (
            "scheduler",
            "CreateSchedule",
            {"Name": "s"},
            "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/s",
        ),
        (
            "scheduler",
            "GetScheduleGroup",
            {"Name": "g"},
            "arn:aws:scheduler:eu-west-1:123456789012:schedule-group/g",
        ),
    ],
)
def test_the_resource_is_the_arn_aws_names(
    service: str, operation: str, params: dict[str, object], resource: str
) -> None:
    assert resource_of(service, operation, params, SCOPE) == resource


def test_actions_are_iam_names() -> None:
    assert action_of("lambda", "Invoke") == "lambda:InvokeFunction"
    assert action_of("lambda", "InvokeWithResponseStream") == "lambda:InvokeFunction"
    assert action_of("scheduler", "CreateSchedule") == "scheduler:CreateSchedule"
