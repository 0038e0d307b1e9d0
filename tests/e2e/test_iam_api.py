"""IAM and STS through real boto3 ``iam``/``sts`` clients over real HTTP (uvicorn), answers compared
member by member with AWS's documented examples (botocore's ``examples-1.json``) and errors with the
models' exceptions.

Until the composition root serves IAM and STS (the lead wires ``iam_api()``/``sts_api()`` into app.py),
the test composes the ``AwsApi`` itself, on a real store and key ring; authentication is off here, so the
caller is the default account's root (SigV4 and per-principal answers come with the verifier).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator
from typing import Any, cast

import botocore.session
import pytest
from botocore.exceptions import ClientError

from lambdad.api import AwsApi, Services
from lambdad.api.iam import iam_api
from lambdad.api.sts import sts_api
from lambdad.services.identity import IdentityService
from lambdad.services.sts import StsService
from lambdad.store import Database
from lambdad.store.keyring import KeyRing
from tests.api.served import Served

ACCOUNT = "000000000000"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
S3_READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('iam') / 'lambdad.db'}")
    database.migrate()
    ring = KeyRing([secrets.token_bytes(32)])
    identities = IdentityService(database, ring)
    identities.bootstrap(ACCOUNT)
    others = {
        field.name: None for field in dataclasses.fields(Services) if field.name not in ("identities", "sts")
    }
    services = Services(
        **cast(dict[str, Any], others), identities=identities, sts=StsService(database, ring, identities)
    )
    with Served(AwsApi([iam_api(), sts_api()], services, ACCOUNT, "us-east-1")) as running:
        yield running
    database.dispose()


def example(service: str, operation: str, index: int = 0) -> dict[str, Any]:
    loader = botocore.session.get_session().get_component("data_loader")
    return dict(loader.load_service_model(service, "examples-1")["examples"][operation][index]["output"])


def same_members(ours: dict[str, Any], theirs: dict[str, Any], optional: tuple[str, ...] = ()) -> None:
    """Our answer has the members of AWS's example (but those that only some answers carry)."""
    assert set(ours) - {"ResponseMetadata"} == set(theirs) - set(optional), (sorted(ours), sorted(theirs))


def test_users_and_access_keys(served: Served) -> None:
    iam = served.client("iam")
    created = iam.create_user(UserName="Bob")
    same_members(created["User"], example("iam", "CreateUser")["User"])
    assert created["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/Bob"
    same_members(iam.get_user(UserName="bob")["User"], example("iam", "GetUser")["User"])
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as exists:
        iam.create_user(UserName="BOB")
    assert exists.value.response["Error"]["Message"] == "User with name BOB already exists."
    assert exists.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(iam.exceptions.NoSuchEntityException) as missing:
        iam.get_user(UserName="nobody")
    assert missing.value.response["Error"]["Message"] == "The user with name nobody cannot be found."
    with pytest.raises(ClientError) as invalid:
        iam.create_user(UserName="no spaces")
    assert invalid.value.response["Error"]["Code"] == "ValidationError"

    key = iam.create_access_key(UserName="Bob")["AccessKey"]
    same_members(key, example("iam", "CreateAccessKey")["AccessKey"])
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    iam.create_access_key(UserName="Bob")
    with pytest.raises(iam.exceptions.LimitExceededException) as limit:
        iam.create_access_key(UserName="Bob")
    assert limit.value.response["Error"]["Message"] == "Cannot exceed quota for AccessKeysPerUser: 2"
    listed = iam.list_access_keys(UserName="Bob")["AccessKeyMetadata"]
    same_members(listed[0], example("iam", "ListAccessKeys")["AccessKeyMetadata"][0])
    iam.update_access_key(UserName="Bob", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    statuses = {
        k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="Bob")["AccessKeyMetadata"]
    }
    assert statuses[key["AccessKeyId"]] == "Inactive"
    with pytest.raises(iam.exceptions.DeleteConflictException) as conflict:
        iam.delete_user(UserName="Bob")
    assert (
        conflict.value.response["Error"]["Message"] == "Cannot delete entity, must delete access keys first."
    )
    for listed_key in iam.list_access_keys(UserName="Bob")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="Bob", AccessKeyId=listed_key["AccessKeyId"])
    iam.delete_user(UserName="Bob")
    # The root's own keys: no UserName names the caller.
    assert iam.list_access_keys()["AccessKeyMetadata"][0]["AccessKeyId"].startswith("AKIA")
    assert iam.get_user()["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_listing_users_pages(served: Served) -> None:
    iam = served.client("iam")
    for index in range(5):
        iam.create_user(UserName=f"pager{index}", Path="/pagers/")
    first = iam.list_users(PathPrefix="/pagers/", MaxItems=2)
    assert first["IsTruncated"] and len(first["Users"]) == 2 and first["Marker"]
    pages = iam.get_paginator("list_users").paginate(PathPrefix="/pagers/", PaginationConfig={"PageSize": 2})
    names = [user["UserName"] for page in pages for user in page["Users"]]
    assert names == [f"pager{index}" for index in range(5)]
    user = iam.list_users(PathPrefix="/pagers/")["Users"][0]
    same_members(user, example("iam", "ListUsers")["Users"][0], optional=("PasswordLastUsed",))


def test_inline_and_managed_policies(served: Served) -> None:
    iam = served.client("iam")
    iam.create_user(UserName="carol")
    iam.put_user_policy(UserName="carol", PolicyName="read", PolicyDocument=json.dumps(S3_READ))
    got = iam.get_user_policy(UserName="carol", PolicyName="read")
    assert got["PolicyDocument"] == S3_READ  # IAM answers it URL-encoded; botocore decodes it
    assert iam.list_user_policies(UserName="carol")["PolicyNames"] == ["read"]
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as malformed:
        iam.put_user_policy(UserName="carol", PolicyName="bad", PolicyDocument="{not json")
    assert malformed.value.response["Error"]["Message"] == "This policy contains invalid Json"

    policy = iam.create_policy(PolicyName="Reader", PolicyDocument=json.dumps(S3_READ), Description="reads")[
        "Policy"
    ]
    assert policy["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/Reader" and policy["DefaultVersionId"] == "v1"
    iam.attach_user_policy(UserName="carol", PolicyArn=policy["Arn"])
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_user_policy(UserName="carol", PolicyArn=basic)
    attached = iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"]
    assert {p["PolicyArn"] for p in attached} == {policy["Arn"], basic}
    assert iam.get_policy(PolicyArn=policy["Arn"])["Policy"]["AttachmentCount"] == 1
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId="v1")["PolicyVersion"]
    assert version["Document"] == S3_READ and version["IsDefaultVersion"]
    aws_version = iam.get_policy_version(PolicyArn=basic, VersionId="v1")["PolicyVersion"]
    assert aws_version["Document"]["Statement"][0]["Action"] == [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    aws_policies = [
        p["PolicyName"]
        for page in iam.get_paginator("list_policies").paginate(Scope="AWS", PaginationConfig={"PageSize": 3})
        for p in page["Policies"]
    ]
    assert {"AWSLambda_FullAccess", "AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole"} <= set(
        aws_policies
    )
    assert [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]] == ["Reader"]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy(PolicyArn=policy["Arn"])
    with pytest.raises(iam.exceptions.NoSuchEntityException) as unknown:
        iam.attach_user_policy(UserName="carol", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/Nope")
    assert unknown.value.response["Error"]["Message"].endswith("does not exist or is not attachable.")
    deny = {**S3_READ, "Statement": [{**S3_READ["Statement"][0], "Effect": "Deny"}]}
    second = iam.create_policy_version(
        PolicyArn=policy["Arn"], PolicyDocument=json.dumps(deny), SetAsDefault=True
    )
    assert (second["PolicyVersion"]["VersionId"], second["PolicyVersion"]["IsDefaultVersion"]) == ("v2", True)
    versions = iam.list_policy_versions(PolicyArn=policy["Arn"])["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v2", True), ("v1", False)]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy_version(PolicyArn=policy["Arn"], VersionId="v2")
    iam.set_default_policy_version(PolicyArn=policy["Arn"], VersionId="v1")
    iam.delete_policy_version(PolicyArn=policy["Arn"], VersionId="v2")
    iam.detach_user_policy(UserName="carol", PolicyArn=policy["Arn"])
    iam.delete_policy(PolicyArn=policy["Arn"])
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy(PolicyArn=policy["Arn"])


def test_roles_and_assume_role(served: Served) -> None:
    iam, sts = served.client("iam"), served.client("sts")
    created = iam.create_role(RoleName="Test-Role", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    same_members(created, example("iam", "CreateRole")["Role"])
    assert created["AssumeRolePolicyDocument"] == TRUST
    role = iam.get_role(RoleName="Test-Role")["Role"]
    same_members(role, example("iam", "GetRole")["Role"])
    iam.put_role_policy(RoleName="Test-Role", PolicyName="read", PolicyDocument=json.dumps(S3_READ))
    assert iam.get_role_policy(RoleName="Test-Role", PolicyName="read")["PolicyDocument"] == S3_READ
    iam.attach_role_policy(RoleName="Test-Role", PolicyArn="arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess")
    assert [
        p["PolicyName"] for p in iam.list_attached_role_policies(RoleName="Test-Role")["AttachedPolicies"]
    ] == ["AWSLambda_ReadOnlyAccess"]
    assert "Test-Role" in [r["RoleName"] for r in iam.list_roles()["Roles"]]

    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="Bob", DurationSeconds=900)
    same_members(assumed, example("sts", "AssumeRole"), optional=("PackedPolicySize",))
    assert assumed["AssumedRoleUser"] == {
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Test-Role/Bob",
        "AssumedRoleId": f"{role['RoleId']}:Bob",
    }
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA") and credentials["SessionToken"]
    with pytest.raises(ClientError) as too_long:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="Bob", DurationSeconds=7200)
    assert too_long.value.response["Error"] == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    }
    iam.update_assume_role_policy(RoleName="Test-Role", PolicyDocument=json.dumps(LAMBDA_TRUST))
    with pytest.raises(ClientError) as denied:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="Bob")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert denied.value.response["Error"]["Message"] == (
        f"User: {root} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}"
    )
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_role(RoleName="Test-Role")
    iam.delete_role_policy(RoleName="Test-Role", PolicyName="read")
    iam.detach_role_policy(RoleName="Test-Role", PolicyArn="arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess")
    iam.delete_role(RoleName="Test-Role")
    with pytest.raises(iam.exceptions.NoSuchEntityException) as gone:
        iam.get_role(RoleName="Test-Role")
    assert gone.value.response["Error"]["Message"] == "The role with name Test-Role cannot be found."


def test_get_caller_identity(served: Served) -> None:
    identity = served.client("sts").get_caller_identity()
    same_members(identity, example("sts", "GetCallerIdentity"))
    assert (identity["Account"], identity["Arn"], identity["UserId"]) == (
        ACCOUNT,
        f"arn:aws:iam::{ACCOUNT}:root",
        ACCOUNT,
    )
