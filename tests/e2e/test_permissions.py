"""Resource-based policies end to end: AddPermission, GetPolicy and RemovePermission on functions,
versions and aliases, compared with AWS's recorded answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.invoke_support import unique
from tests.recordings import differences, recorded
from tests.support import create_function

pytestmark = pytest.mark.e2e
API = "test_lambda_api.snapshot.json"
PERMISSIONS = "TestLambdaPermissions::"
BUCKET_ARN = "arn:aws:s3:::test-bucket"
ACCOUNT = "000000000000"


def expected(test: str, key: str) -> Any:
    return recorded(API, PERMISSIONS + test, key)


def statement_of(answer: dict[str, Any]) -> Any:
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 201
    return json.loads(answer["Statement"])


def policy_of(answer: dict[str, Any]) -> dict[str, Any]:
    """A GetPolicy answer in the recordings' form (the Policy string parsed)."""
    assert isinstance(answer["Policy"], str)
    return {"Policy": json.loads(answer["Policy"]), "RevisionId": answer["RevisionId"]}


def error_differences(error: Any, wanted: dict[str, Any]) -> list[str]:
    answer = error.value.response
    found = differences(answer["Error"], wanted["Error"], "Error")
    status, wanted_status = (
        answer["ResponseMetadata"]["HTTPStatusCode"],
        wanted["ResponseMetadata"]["HTTPStatusCode"],
    )
    if status != wanted_status:
        found.append(f"status {status} != {wanted_status}")
    return found


def grant(client: Any, name: str, sid: str = "s3", **extra: Any) -> dict[str, Any]:
    params = {"Action": "lambda:InvokeFunction", "StatementId": sid, "Principal": "s3.amazonaws.com"}
    params.update(extra)
    return dict(client.add_permission(FunctionName=name, **params))


def test_add_permission_and_get_policy_match_aws(client: Any) -> None:
    name = unique("perm-aws")
    create_function(client, name)
    added = grant(client, name, SourceArn=BUCKET_ARN)
    assert (
        differences(
            statement_of(added), expected("test_add_lambda_permission_aws", "add_permission")["Statement"]
        )
        == []
    )
    policy = policy_of(client.get_policy(FunctionName=name))
    wanted = expected("test_add_lambda_permission_aws", "get_policy")
    assert differences(policy, {k: wanted[k] for k in ("Policy", "RevisionId")}) == []
    # AWS's compact JSON, Version and Id first.
    assert client.get_policy(FunctionName=name)["Policy"].startswith(
        '{"Version":"2012-10-17","Id":"default",'
    )


def test_statement_shapes_for_every_optional_field(client: Any) -> None:
    name = unique("perm-fields")
    create_function(client, name)
    test = "test_add_lambda_permission_fields"
    answers = {
        "add_permission_principal_wildcard": grant(
            client, name, "wilcard", Principal="*", SourceAccount=ACCOUNT
        ),
        "add_permission_principal_service": grant(
            client, name, "lambda", Principal="lambda.amazonaws.com", SourceAccount=ACCOUNT
        ),
        "add_permission_principal_account": grant(client, name, "account-id", Principal=ACCOUNT),
        "add_permission_optional_fields": client.add_permission(
            FunctionName=name,
            StatementId="urlPermission",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            SourceArn=BUCKET_ARN,
            SourceAccount=ACCOUNT,
            PrincipalOrgID="o-1234567890",
            FunctionUrlAuthType="NONE",
        ),
        "add_permission_alexa_skill": grant(
            client,
            name,
            "alexaSkill",
            Principal="*",
            EventSourceToken="amzn1.ask.skill.xxxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        ),
    }
    for key, answer in answers.items():
        assert differences(statement_of(answer), expected(test, key)["Statement"], key) == []
    user = f"arn:aws:iam::{ACCOUNT}:user/someone"
    by_arn = statement_of(grant(client, name, "user-arn", Principal=user, SourceAccount=ACCOUNT))
    wanted = expected(test, "add_permission_principal_arn")["Statement"]
    assert by_arn["Principal"] == {"AWS": user}
    assert differences({**by_arn, "Principal": "<user_arn>"}, {**wanted, "Principal": "<user_arn>"}) == []
    # Since October 2025 AWS also takes InvokedViaFunctionUrl, as a Bool condition.
    via_url = statement_of(grant(client, name, "viaUrl", Principal="*", InvokedViaFunctionUrl=True))
    assert via_url["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    statements = json.loads(client.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == [
        "wilcard",
        "lambda",
        "account-id",
        "urlPermission",
        "alexaSkill",
        "user-arn",
        "viaUrl",
    ]


def test_remove_permissions_one_by_one_as_aws(client: Any) -> None:
    name = unique("perm-remove")
    create_function(client, name)
    test = "test_remove_multi_permissions"
    assert (
        differences(statement_of(grant(client, name)), expected(test, "add_permission_1")["Statement"]) == []
    )
    second = grant(client, name, "sqs", Principal="sqs.amazonaws.com", SourceArn=BUCKET_ARN)
    assert differences(statement_of(second), expected(test, "add_permission_2")["Statement"]) == []
    both = policy_of(client.get_policy(FunctionName=name))
    assert differences(both["Policy"], expected(test, "policy_after_2_add")["Policy"]) == []

    with pytest.raises(client.exceptions.ResourceNotFoundException) as error:
        client.remove_permission(FunctionName=name, StatementId="non-existent")
    assert error_differences(error, expected(test, "remove_permission_exception_nonexisting_sid")) == []

    removed = client.remove_permission(FunctionName=name, StatementId="sqs")
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = policy_of(client.get_policy(FunctionName=name))
    assert differences(after["Policy"], expected(test, "policy_after_removal")["Policy"]) == []
    assert after["RevisionId"] != both["RevisionId"]
    # A stale RevisionId is refused; the current one is accepted.
    with pytest.raises(client.exceptions.PreconditionFailedException) as stale:
        client.remove_permission(FunctionName=name, StatementId="s3", RevisionId=both["RevisionId"])
    wanted = expected("test_lambda_permission_revisions", "remove_permission_fn_revision_id_doesnotmatch")
    assert error_differences(stale, wanted) == []
    client.remove_permission(FunctionName=name, StatementId="s3", RevisionId=after["RevisionId"])

    with pytest.raises(client.exceptions.ResourceNotFoundException) as gone:
        client.get_policy(FunctionName=name)
    assert error_differences(gone, expected(test, "get_policy_exception_removed_all")) == []
    with pytest.raises(client.exceptions.ResourceNotFoundException) as nothing:
        client.remove_permission(FunctionName=name, StatementId="s3")
    assert (
        error_differences(
            nothing, expected("test_permission_exceptions", "remove_permission_policy_doesnotexist")
        )
        == []
    )


def test_permission_errors_match_aws(client: Any, unvalidated_client: Any) -> None:
    name = unique("perm-errors")
    create_function(client, name)
    test = "test_permission_exceptions"

    def fails(key: str, call: Any, **params: Any) -> None:
        with pytest.raises(client.exceptions.ClientError) as error:
            call(**params)
        assert error_differences(error, expected(test, key)) == [], key

    base = {"Action": "lambda:InvokeFunction", "StatementId": "s3", "Principal": "s3.amazonaws.com"}
    fails(
        "add_permission_invalid_statement_id",
        unvalidated_client.add_permission,
        FunctionName=name,
        **{**base, "StatementId": "example.com"},
    )
    fails(
        "add_permission_fn_qualifier_mismatch",
        client.add_permission,
        FunctionName=f"{name}:alias-not-42",
        Qualifier="42",
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "add_permission_fn_qualifier_latest",
        client.add_permission,
        FunctionName=f"{name}:$LATEST",
        Qualifier="$LATEST",
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "add_permission_principal_invalid",
        client.add_permission,
        FunctionName=name,
        SourceAccount=ACCOUNT,
        **{**base, "StatementId": "lambda", "Principal": "invalid.nonaws.com"},
    )
    fails("get_policy_fn_doesnotexist", client.get_policy, FunctionName="doesnotexist")
    fails("get_policy_fn_version_doesnotexist", client.get_policy, FunctionName=name, Qualifier="77")
    fails(
        "add_permission_fn_doesnotexist",
        client.add_permission,
        FunctionName="doesnotexist",
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "add_permission_fn_alias_doesnotexist",
        client.add_permission,
        FunctionName=f"{name}:alias-doesnotexist",
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "add_permission_fn_version_doesnotexist",
        client.add_permission,
        FunctionName=name,
        Qualifier="42",
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "add_permission_fn_qualifier_invalid",
        unvalidated_client.add_permission,
        FunctionName=name,
        Qualifier="invalid-qualifier-with-?-char",
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "add_permission_fn_qualifier_valid_doesnotexist",
        client.add_permission,
        FunctionName=name,
        Qualifier="valid-with-$-but-doesnotexist",
        SourceArn=BUCKET_ARN,
        **base,
    )
    grant(client, name, SourceArn=BUCKET_ARN)
    fails(
        "add_permission_conflicting_statement_id",
        client.add_permission,
        FunctionName=name,
        SourceArn=BUCKET_ARN,
        **base,
    )
    fails(
        "remove_permission_fn_doesnotexist",
        client.remove_permission,
        FunctionName="doesnotexist",
        StatementId="s3",
    )
    fails(
        "remove_permission_fn_alias_doesnotexist",
        client.remove_permission,
        FunctionName=name,
        StatementId="s3",
        Qualifier="alias-doesnotexist",
    )


def test_versions_and_aliases_have_policies_of_their_own(client: Any) -> None:
    name = unique("perm-versions")
    create_function(client, name)
    test = "test_lambda_permission_fn_versioning"
    statement = statement_of(grant(client, name, SourceArn=BUCKET_ARN))
    assert differences(statement, expected(test, "add_permission")["Statement"]) == []
    base = policy_of(client.get_policy(FunctionName=name))

    version = client.publish_version(FunctionName=name)["Version"]
    client.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version)
    # Publishing renews $LATEST's RevisionId, not the policy's: the policy stays with the function.
    after_publish = policy_of(client.get_policy(FunctionName=name))
    assert after_publish == base
    with pytest.raises(client.exceptions.ResourceNotFoundException) as error:
        client.get_policy(FunctionName=name, Qualifier=version)
    assert error_differences(error, expected(test, "get_policy_after_publishing_new_version")) == []

    # The same Sid on the version: its own statement, its Resource the version's ARN.
    grant(client, f"{name}:{version}", Qualifier=version, SourceArn=BUCKET_ARN)
    on_version = policy_of(client.get_policy(FunctionName=name, Qualifier=version))
    assert differences(on_version["Policy"], expected(test, "get_policy_version")["Policy"]) == []

    alias = client.create_alias(FunctionName=name, Name="permission-alias", FunctionVersion=version)
    with pytest.raises(client.exceptions.PreconditionFailedException) as stale:
        grant(client, name, Qualifier="permission-alias", SourceArn=BUCKET_ARN, RevisionId="wrong")
    assert error_differences(stale, expected(test, "add_permission_alias_revision_exception")) == []
    # Before an alias has a policy, the alias's own RevisionId is the one to name.
    grant(
        client,
        f"{name}:permission-alias",
        Qualifier="permission-alias",
        SourceArn=BUCKET_ARN,
        RevisionId=alias["RevisionId"],
    )
    on_alias = policy_of(client.get_policy(FunctionName=name, Qualifier="permission-alias"))
    assert differences(on_alias["Policy"], expected(test, "get_policy_alias")["Policy"]) == []

    unchanged = policy_of(client.get_policy(FunctionName=name))
    assert unchanged["RevisionId"] == base["RevisionId"]
    grant(client, name, "s3_2", SourceArn=BUCKET_ARN, RevisionId=unchanged["RevisionId"])
    two = policy_of(client.get_policy(FunctionName=name))
    assert differences(two["Policy"], expected(test, "get_policy_after_adding_2")["Policy"]) == []
    with pytest.raises(client.exceptions.PreconditionFailedException) as stale_function:
        grant(client, name, "s3_3", SourceArn=BUCKET_ARN, RevisionId=unchanged["RevisionId"])
    wanted = expected("test_lambda_permission_revisions", "add_permission_revision_id_doesnotmatch")
    assert error_differences(stale_function, wanted) == []


def test_deleting_an_alias_version_or_function_removes_its_policy(client: Any) -> None:
    name = unique("perm-delete")
    create_function(client, name)
    version = client.publish_version(FunctionName=name)["Version"]
    client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    grant(client, name, Qualifier="live")
    client.delete_alias(FunctionName=name, Name="live")
    client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_policy(FunctionName=name, Qualifier="live")

    client.delete_alias(FunctionName=name, Name="live")
    grant(client, name, Qualifier=version)
    client.delete_function(FunctionName=name, Qualifier=version)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_policy(FunctionName=name, Qualifier=version)

    grant(client, name)
    client.delete_function(FunctionName=name)
    create_function(client, name)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_policy(FunctionName=name)
    grant(client, name)  # the same Sid is free again


def test_aws_cli_add_permission_and_get_policy(server: Any) -> None:
    name = unique("perm-cli")
    create_function(server.client(), name)
    added = server.aws_cli(
        "add-permission",
        "--function-name",
        name,
        "--statement-id",
        "FunctionURLAllowPublicAccess",
        "--action",
        "lambda:InvokeFunctionUrl",
        "--principal",
        "*",
        "--function-url-auth-type",
        "NONE",
    )
    statement = json.loads(json.loads(added.stdout)["Statement"])
    assert statement["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    policy = json.loads(json.loads(server.aws_cli("get-policy", "--function-name", name).stdout)["Policy"])
    assert policy["Statement"] == [statement]
