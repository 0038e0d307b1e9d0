"""PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy end to end through boto3: a whole
resource-based policy document on a function, version or alias, replacing AddPermission's statements."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import unique
from tests.support import create_function

pytestmark = pytest.mark.e2e
ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def document(resource: str, principal: Any = None) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "other-account",
                    "Effect": "Allow",
                    "Principal": principal or {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": "lambda:InvokeFunction",
                    "Resource": resource,
                }
            ],
        }
    )


def error_of(raised: Any) -> tuple[int, str, str]:
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_put_get_and_delete_a_functions_policy(client: Any) -> None:
    name = unique("rp")
    create_function(client, name)
    client.add_permission(
        FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
    )
    put = client.put_resource_policy(ResourceArn=arn(name), Policy=document(arn(name)))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    statements = json.loads(put["Policy"])["Statement"]
    assert [statement["Sid"] for statement in statements] == ["other-account"]  # AddPermission's replaced
    got = client.get_resource_policy(ResourceArn=arn(name))
    assert got["RevisionId"] == put["RevisionId"]
    assert json.loads(got["Policy"])["Statement"] == statements
    # GetPolicy reads the same policy
    assert json.loads(client.get_policy(FunctionName=name)["Policy"])["Statement"] == statements
    with pytest.raises(ClientError) as stale:
        client.put_resource_policy(
            ResourceArn=arn(name),
            Policy=document(arn(name)),
            RevisionId="00000000-0000-0000-0000-000000000000",
        )
    assert error_of(stale)[:2] == (412, "PreconditionFailedException")
    deleted = client.delete_resource_policy(ResourceArn=arn(name), RevisionId=got["RevisionId"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as missing:
        client.get_resource_policy(ResourceArn=arn(name))
    assert error_of(missing) == (
        404,
        "ResourceNotFoundException",
        "The resource you requested does not exist.",
    )
    with pytest.raises(ClientError) as gone:
        client.delete_resource_policy(ResourceArn=arn(name))
    assert error_of(gone) == (
        404,
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
    )


def test_a_versions_and_an_aliass_own_policies(client: Any) -> None:
    name = unique("rp-alias")
    create_function(client, name)
    version = client.publish_version(FunctionName=name)["Version"]
    client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    client.put_resource_policy(ResourceArn=arn(name, "live"), Policy=document(arn(name, "live")))
    client.put_resource_policy(ResourceArn=arn(name, version), Policy=document(arn(name, version), "*"))
    assert (
        json.loads(client.get_resource_policy(ResourceArn=arn(name, version))["Policy"])["Statement"][0][
            "Principal"
        ]
        == "*"
    )
    assert (
        "AWS"
        in json.loads(client.get_resource_policy(ResourceArn=arn(name, "live"))["Policy"])["Statement"][0][
            "Principal"
        ]
    )
    with pytest.raises(ClientError) as unqualified:
        client.get_resource_policy(ResourceArn=arn(name))
    assert error_of(unqualified)[0] == 404
    with pytest.raises(ClientError) as latest:
        client.put_resource_policy(ResourceArn=arn(name, "$LATEST"), Policy=document(arn(name)))
    assert error_of(latest) == (
        400,
        "InvalidParameterValueException",
        "We currently do not support adding policies for $LATEST.",
    )


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{not json", "Syntax errors in policy."),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}],
                }
            ),
            "Missing required field Principal",
        ),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "*"}],
                }
            ),
            "Policy statement must contain actions.",
        ),
    ],
)
def test_a_malformed_document_is_refused(client: Any, policy: str, message: str) -> None:
    name = unique("rp-bad")
    create_function(client, name)
    with pytest.raises(ClientError) as refused:
        client.put_resource_policy(ResourceArn=arn(name), Policy=policy)
    assert error_of(refused) == (400, "InvalidParameterValueException", message)


def test_a_function_that_does_not_exist(client: Any) -> None:
    with pytest.raises(ClientError) as missing:
        client.put_resource_policy(ResourceArn=arn("rp-none"), Policy=document(arn("rp-none")))
    assert error_of(missing) == (404, "ResourceNotFoundException", f"Function not found: {arn('rp-none')}")
