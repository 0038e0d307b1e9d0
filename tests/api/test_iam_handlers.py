"""The IAM and STS handlers called directly with a ``Call`` (the query protocol serves them end to end in
tests/e2e/test_iam_api.py): every handler is an operation of botocore's model, and every member it
answers is in the operation's output shape, so a typo fails here rather than in a client."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

import pytest
from botocore.model import Shape

from lambdad.api.iam import iam_api
from lambdad.api.operations import Call, Services
from lambdad.api.service_model import service_model
from lambdad.api.sts import sts_api
from lambdad.errors import InvalidInput, ServiceFailure, ValidationError
from lambdad.models import Principal, PrincipalKind, Scope
from lambdad.services.identity import IdentityService
from lambdad.services.sts import StsService
from lambdad.store import Database
from lambdad.store.keyring import KeyRing

ACCOUNT = "000000000000"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
)
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


def services(identities: IdentityService | None, sts: StsService | None) -> Services:
    """Services with only IAM and STS: the handlers under test touch nothing else."""
    required = {
        field.name: None for field in dataclasses.fields(Services) if field.name not in ("identities", "sts")
    }
    return Services(**cast(dict[str, Any], required), identities=identities, sts=sts)


@pytest.fixture
def invoke(tmp_path: Path) -> Iterator[Any]:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.migrate()
    ring = KeyRing([secrets.token_bytes(32)])
    identities = IdentityService(database, ring)
    identities.bootstrap(ACCOUNT)
    wired = services(identities, StsService(database, ring, identities))

    def run(operation: str, principal: Principal | None = None, **params: Any) -> dict[str, Any]:
        for api in (iam_api(), sts_api()):
            handler = api.table.handlers.get(operation)
            if handler is not None:
                who = principal or Principal.root(ACCOUNT)
                call = Call(operation, params, Scope(ACCOUNT, "us-east-1"), wired, "http://x", "rid", who)
                output = cast(dict[str, Any], handler(call))
                model = service_model(api.model).operation_model(operation)
                if model.output_shape is not None:
                    _conforms(output, model.output_shape, operation)
                return output
        raise AssertionError(f"no handler for {operation}")

    yield run
    database.dispose()


def _conforms(value: Any, shape: Shape, where: str) -> None:
    if shape.type_name == "structure":
        assert isinstance(value, dict), where
        for name, member in value.items():
            assert name in shape.members, f"{where}.{name} is not in {shape.name}"  # type: ignore[attr-defined]
            _conforms(member, shape.members[name], f"{where}.{name}")  # type: ignore[attr-defined]
    elif shape.type_name == "list":
        assert isinstance(value, list), where
        for item in value:
            _conforms(item, shape.member, where)  # type: ignore[attr-defined]


def test_every_handler_is_an_operation_of_the_model() -> None:
    for api in (iam_api(), sts_api()):
        names = set(service_model(api.model).operation_names)
        assert set(api.table.handlers) <= names, set(api.table.handlers) - names
    assert {"CreateUser", "ListAttachedRolePolicies", "UpdateAssumeRolePolicy", "GetPolicyVersion"} <= set(
        iam_api().table.handlers
    )
    assert set(sts_api().table.handlers) == {"GetCallerIdentity", "AssumeRole"}


def test_a_user_with_keys_and_policies(invoke: Any) -> None:
    user = invoke("CreateUser", UserName="alice", Path="/dev/")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/dev/alice"
    key = invoke("CreateAccessKey", UserName="alice")["AccessKey"]
    assert invoke("ListAccessKeys", UserName="alice") == {
        "AccessKeyMetadata": [
            {
                "UserName": "alice",
                "AccessKeyId": key["AccessKeyId"],
                "Status": "Active",
                "CreateDate": key["CreateDate"],
            }
        ],
        "IsTruncated": False,
    }
    invoke("PutUserPolicy", UserName="alice", PolicyName="s3", PolicyDocument=POLICY)
    assert invoke("ListUserPolicies", UserName="alice") == {"PolicyNames": ["s3"], "IsTruncated": False}
    got = invoke("GetUserPolicy", UserName="alice", PolicyName="s3")
    assert json.loads(unquote(got["PolicyDocument"])) == json.loads(POLICY)
    invoke("AttachUserPolicy", UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess")
    attached = invoke("ListAttachedUserPolicies", UserName="alice")["AttachedPolicies"]
    assert attached == [
        {
            "PolicyName": "AWSLambda_ReadOnlyAccess",
            "PolicyArn": "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
        }
    ]
    listed = invoke("ListUsers", MaxItems=1)
    assert [u["UserName"] for u in listed["Users"]] == ["alice"] and listed["IsTruncated"] is False
    # The user herself, without naming anyone: GetUser and her own keys.
    alice = Principal(ACCOUNT, PrincipalKind.USER, user["Arn"], user["UserId"])
    assert invoke("GetUser", alice)["User"]["UserName"] == "alice"
    assert invoke("ListAccessKeys", alice)["AccessKeyMetadata"][0]["AccessKeyId"] == key["AccessKeyId"]
    invoke("UpdateAccessKey", alice, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    invoke("DeleteAccessKey", alice, AccessKeyId=key["AccessKeyId"])
    assert invoke("GetUser")["User"] == {
        "UserId": ACCOUNT,
        "Arn": f"arn:aws:iam::{ACCOUNT}:root",
        "CreateDate": invoke("GetUser")["User"]["CreateDate"],
    }


def test_roles_policies_and_assume_role(invoke: Any) -> None:
    role = invoke("CreateRole", RoleName="admin", AssumeRolePolicyDocument=TRUST, Description="d")["Role"]
    assert json.loads(unquote(role["AssumeRolePolicyDocument"])) == json.loads(TRUST)
    policy = invoke("CreatePolicy", PolicyName="s3", PolicyDocument=POLICY)["Policy"]
    invoke("AttachRolePolicy", RoleName="admin", PolicyArn=policy["Arn"])
    invoke("PutRolePolicy", RoleName="admin", PolicyName="inline", PolicyDocument=POLICY)
    assert invoke("GetPolicy", PolicyArn=policy["Arn"])["Policy"]["AttachmentCount"] == 1
    assert invoke("GetPolicyVersion", PolicyArn=policy["Arn"], VersionId="v1")["PolicyVersion"][
        "IsDefaultVersion"
    ]
    assert [v["VersionId"] for v in invoke("ListPolicyVersions", PolicyArn=policy["Arn"])["Versions"]] == [
        "v1"
    ]
    assert invoke("ListPolicies", Scope="Local")["Policies"][0]["PolicyName"] == "s3"
    assert invoke("ListRoles")["Roles"][0]["RoleName"] == "admin"
    assert invoke("GetRole", RoleName="admin")["Role"]["RoleLastUsed"] == {}
    assumed = invoke("AssumeRole", RoleArn=role["Arn"], RoleSessionName="ops")
    session = Principal(
        ACCOUNT,
        PrincipalKind.ASSUMED_ROLE,
        assumed["AssumedRoleUser"]["Arn"],
        assumed["AssumedRoleUser"]["AssumedRoleId"],
        role_arn=role["Arn"],
    )
    assert invoke("GetCallerIdentity", session) == {
        "UserId": assumed["AssumedRoleUser"]["AssumedRoleId"],
        "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/ops",
    }
    with pytest.raises(ValidationError, match="Policy is not supported"):
        invoke("AssumeRole", RoleArn=role["Arn"], RoleSessionName="ops", Policy=POLICY)
    with pytest.raises(InvalidInput, match="Permissions boundaries"):
        invoke("CreateRole", RoleName="b", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=policy["Arn"])
    invoke("UpdateAssumeRolePolicy", RoleName="admin", PolicyDocument=TRUST)
    invoke("DetachRolePolicy", RoleName="admin", PolicyArn=policy["Arn"])
    invoke("DeleteRolePolicy", RoleName="admin", PolicyName="inline")
    invoke("DeletePolicy", PolicyArn=policy["Arn"])
    invoke("DeleteRole", RoleName="admin")
    assert invoke("ListRoles") == {"Roles": [], "IsTruncated": False}


def test_without_the_identity_services_the_handlers_answer_service_failure() -> None:
    handler = iam_api().table.handlers["ListUsers"]
    call = Call(
        "ListUsers",
        {},
        Scope(ACCOUNT, "us-east-1"),
        services(None, None),
        "http://x",
        "rid",
        Principal.root(ACCOUNT),
    )
    with pytest.raises(ServiceFailure):
        handler(call)
