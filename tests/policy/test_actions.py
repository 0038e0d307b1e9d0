"""The operation table: every operation of the models lambdad serves has its IAM action and resource,
as AWS's Service Authorization Reference gives them."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from lambdad.models import Scope
from lambdad.policy.actions import access_of, layers_used, passed_roles

SCOPE = Scope("123456789012", "eu-west-1")
ARN = "arn:aws:lambda:eu-west-1:123456789012"
MODELS = botocore.session.get_session()


@pytest.mark.parametrize("service", ["lambda", "scheduler"])
def test_every_operation_of_the_model_has_an_action_of_its_service(service: str) -> None:
    model = MODELS.get_service_model(service)
    for operation in model.operation_names:
        access = access_of(service, operation, {}, SCOPE)
        assert access.action is not None and access.action.startswith(f"{service}:"), operation
        assert access.resource == "*" or access.resource.startswith("arn:aws:"), operation


@pytest.mark.parametrize(
    ("operation", "params", "action", "resource"),
    [
        ("Invoke", {"FunctionName": "f"}, "lambda:InvokeFunction", f"{ARN}:function:f"),
        (
            "Invoke",
            {"FunctionName": "f", "Qualifier": "live"},
            "lambda:InvokeFunction",
            f"{ARN}:function:f:live",
        ),
        ("InvokeWithResponseStream", {"FunctionName": "f:3"}, "lambda:InvokeFunction", f"{ARN}:function:f:3"),
        ("InvokeAsync", {"FunctionName": "f"}, "lambda:InvokeAsync", f"{ARN}:function:f"),
        (
            "GetFunction",
            {"FunctionName": "arn:aws:lambda:us-east-1:210987654321:function:g"},
            "lambda:GetFunction",
            "arn:aws:lambda:us-east-1:210987654321:function:g",
        ),
        (
            "GetFunction",
            {"FunctionName": "210987654321:function:g"},
            "lambda:GetFunction",
            "arn:aws:lambda:eu-west-1:210987654321:function:g",
        ),
        ("CreateFunction", {"FunctionName": "f", "Role": "r"}, "lambda:CreateFunction", f"{ARN}:function:f"),
        ("ListFunctions", {}, "lambda:ListFunctions", "*"),
        ("GetAccountSettings", {}, "lambda:GetAccountSettings", "*"),
        ("CreateEventSourceMapping", {"FunctionName": "f"}, "lambda:CreateEventSourceMapping", "*"),
        ("ListEventSourceMappings", {"FunctionName": "f"}, "lambda:ListEventSourceMappings", "*"),
        (
            "UpdateEventSourceMapping",
            {"UUID": "u", "FunctionName": "f"},
            "lambda:UpdateEventSourceMapping",
            f"{ARN}:event-source-mapping:u",
        ),
        (
            "GetLayerVersion",
            {"LayerName": "l", "VersionNumber": 2},
            "lambda:GetLayerVersion",
            f"{ARN}:layer:l:2",
        ),
        ("GetLayerVersionByArn", {"Arn": f"{ARN}:layer:l:2"}, "lambda:GetLayerVersion", f"{ARN}:layer:l:2"),
        ("PublishLayerVersion", {"LayerName": "l"}, "lambda:PublishLayerVersion", f"{ARN}:layer:l"),
        (
            "AddLayerVersionPermission",
            {"LayerName": f"{ARN}:layer:l", "VersionNumber": 4},
            "lambda:AddLayerVersionPermission",
            f"{ARN}:layer:l:4",
        ),
        ("ListLayers", {}, "lambda:ListLayers", "*"),
        ("ListLayerVersions", {"LayerName": "l"}, "lambda:ListLayerVersions", "*"),
        ("GetAlias", {"FunctionName": "f", "Name": "live"}, "lambda:GetAlias", f"{ARN}:function:f"),
        (
            "AddPermission",
            {"FunctionName": "f", "Qualifier": "live"},
            "lambda:AddPermission",
            f"{ARN}:function:f:live",
        ),
        ("TagResource", {"Resource": f"{ARN}:function:f"}, "lambda:TagResource", f"{ARN}:function:f"),
        (
            "GetCodeSigningConfig",
            {"CodeSigningConfigArn": f"{ARN}:code-signing-config:csc-1"},
            "lambda:GetCodeSigningConfig",
            f"{ARN}:code-signing-config:csc-1",
        ),
        (
            "PutFunctionCodeSigningConfig",
            {"FunctionName": "f", "CodeSigningConfigArn": f"{ARN}:code-signing-config:c"},
            "lambda:PutFunctionCodeSigningConfig",
            f"{ARN}:function:f",
        ),
        ("CreateCodeSigningConfig", {}, "lambda:CreateCodeSigningConfig", "*"),
        (
            "GetCapacityProvider",
            {"CapacityProviderName": "cp"},
            "lambda:GetCapacityProvider",
            f"{ARN}:capacity-provider:cp",
        ),
        (
            "PutResourcePolicy",
            {"ResourceArn": f"{ARN}:function:f"},
            "lambda:PutResourcePolicy",
            f"{ARN}:function:f",
        ),
    ],
)
def test_lambda_actions_and_resources(
    operation: str, params: dict[str, Any], action: str, resource: str
) -> None:
    access = access_of("lambda", operation, params, SCOPE)
    assert (access.action, access.resource) == (action, resource)


@pytest.mark.parametrize(
    ("service", "operation", "params", "action", "resource"),
    [
        (
            "scheduler",
            "CreateSchedule",
            {"Name": "s"},
            "scheduler:CreateSchedule",
            "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/s",
        ),
        (
            "scheduler",
            "GetSchedule",
            {"Name": "s", "GroupName": "g"},
            "scheduler:GetSchedule",
            "arn:aws:scheduler:eu-west-1:123456789012:schedule/g/s",
        ),
        (
            "scheduler",
            "DeleteScheduleGroup",
            {"Name": "g"},
            "scheduler:DeleteScheduleGroup",
            "arn:aws:scheduler:eu-west-1:123456789012:schedule-group/g",
        ),
        ("scheduler", "ListSchedules", {}, "scheduler:ListSchedules", "*"),
        ("iam", "CreateUser", {"UserName": "bob"}, "iam:CreateUser", "arn:aws:iam::123456789012:user/bob"),
        ("iam", "GetRole", {"RoleName": "r"}, "iam:GetRole", "arn:aws:iam::123456789012:role/r"),
        (
            "iam",
            "CreateRole",
            {"RoleName": "r", "Path": "/svc/"},
            "iam:CreateRole",
            "arn:aws:iam::123456789012:role/svc/r",
        ),
        (
            "iam",
            "AttachUserPolicy",
            {"UserName": "bob", "PolicyArn": "arn:aws:iam::aws:policy/P"},
            "iam:AttachUserPolicy",
            "arn:aws:iam::aws:policy/P",
        ),
        # IAM's listings are decided on the path they list, as its denials name it.
        ("iam", "ListUsers", {}, "iam:ListUsers", "arn:aws:iam::123456789012:user/"),
        ("iam", "ListRoles", {"PathPrefix": "/svc/"}, "iam:ListRoles", "arn:aws:iam::123456789012:role/svc/"),
        (
            "sts",
            "AssumeRole",
            {"RoleArn": "arn:aws:iam::123456789012:role/r"},
            "sts:AssumeRole",
            "arn:aws:iam::123456789012:role/r",
        ),
        (
            "signer",
            "GetSigningProfile",
            {"profileName": "p"},
            "signer:GetSigningProfile",
            "arn:aws:signer:eu-west-1:123456789012:/signing-profiles/p",
        ),
        (
            "ec2",
            "DeleteVpc",
            {"VpcId": "vpc-1"},
            "ec2:DeleteVpc",
            "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1",
        ),
        ("ec2", "DescribeVpcs", {"VpcIds": ["vpc-1"]}, "ec2:DescribeVpcs", "*"),
    ],
)
def test_other_services(
    service: str, operation: str, params: dict[str, Any], action: str, resource: str
) -> None:
    access = access_of(service, operation, params, SCOPE)
    assert (access.action, access.resource) == (action, resource)


def test_get_caller_identity_needs_no_permission() -> None:
    assert access_of("sts", "GetCallerIdentity", {}, SCOPE).action is None


def test_condition_keys_of_lambda_operations() -> None:
    create = access_of(
        "lambda",
        "CreateFunction",
        {
            "FunctionName": "f",
            "Layers": [f"{ARN}:layer:l:1"],
            "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
            "CodeSigningConfigArn": f"{ARN}:code-signing-config:csc-1",
            "Tags": {"team": "a"},
        },
        SCOPE,
    )
    assert create.context == {
        "lambda:Layer": (f"{ARN}:layer:l:1",),
        "lambda:SubnetIds": ("subnet-1",),
        "lambda:SecurityGroupIds": ("sg-1",),
        "lambda:CodeSigningConfigArn": f"{ARN}:code-signing-config:csc-1",
        "aws:TagKeys": ("team",),
        "aws:RequestTag/team": "a",
    }
    mapping = access_of("lambda", "CreateEventSourceMapping", {"FunctionName": "f:live"}, SCOPE)
    assert mapping.context == {"lambda:FunctionArn": f"{ARN}:function:f:live"}
    url = access_of("lambda", "CreateFunctionUrlConfig", {"FunctionName": "f", "AuthType": "NONE"}, SCOPE)
    assert url.context == {"lambda:FunctionUrlAuthType": "NONE"}
    permission = access_of(
        "lambda", "AddPermission", {"FunctionName": "f", "Principal": "s3.amazonaws.com"}, SCOPE
    )
    assert permission.context == {"lambda:Principal": "s3.amazonaws.com"}


def test_roles_passed_and_layers_used() -> None:
    role = "arn:aws:iam::123456789012:role/r"
    assert passed_roles("lambda", "CreateFunction", {"Role": role}) == [(role, "lambda.amazonaws.com")]
    assert passed_roles("lambda", "UpdateFunctionConfiguration", {}) == []
    assert passed_roles("scheduler", "CreateSchedule", {"Target": {"RoleArn": role}}) == [
        (role, "scheduler.amazonaws.com")
    ]
    assert layers_used("lambda", "UpdateFunctionConfiguration", {"Layers": ["a", "b"]}) == ["a", "b"]


@pytest.mark.parametrize(
    "params",
    [
        {
            "FunctionName": "f",
            "Layers": 3,
            "VpcConfig": "x",
            "Tags": ["a"],
            "CodeSigningConfigArn": 1,
            "Role": 2,
        },
        {"FunctionName": "f", "Layers": [1, None], "VpcConfig": {"SubnetIds": "s"}, "Tags": {"a": 1}},
        {"FunctionName": 5, "Target": "t", "AuthType": {"x": 1}, "Principal": []},
    ],
)
def test_parameters_of_the_wrong_type_add_no_keys_and_raise_nothing(params: dict[str, Any]) -> None:
    """Authorisation runs before validation: whatever a client sends, the table answers (validation
    refuses it next)."""
    for service, operation in [
        ("lambda", "CreateFunction"),
        ("lambda", "UpdateFunctionConfiguration"),
        ("lambda", "AddPermission"),
        ("lambda", "CreateFunctionUrlConfig"),
        ("scheduler", "CreateSchedule"),
    ]:
        access = access_of(service, operation, params, SCOPE)
        assert all(value not in (None, ()) or key == "lambda:Layer" for key, value in access.context.items())
        passed_roles(service, operation, params)
        layers_used(service, operation, params)
