"""Authorization end to end, against a real ``lambdad serve --auth sigv4``: a user allowed one action on
one function and denied everything else with AWS's exact messages (boto3 and the AWS CLI); lambdad's own
endpoints asking the IAM action AWS would; ``lambdad`` commands signing with the default credentials; a
function acting with its execution role's policies; a role assumed through STS; accounts kept apart.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.auth_support import (
    REGION,
    arn,
    cli_refusal,
    denied,
    guarded_function,
    keys_of,
    policy,
    refusal,
    said,
    signed_server,
    user_with_keys,
)
from tests.e2e.invoke_support import deploy_python, invoke, unique
from tests.support import ACCOUNT, LAMBDAD, ROLE, Server, cli_credentials

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from signed_server(tmp_path_factory)


@pytest.fixture(scope="module")
def function(server: Server) -> str:
    return guarded_function(server)


def test_a_user_allowed_only_to_invoke_one_function(server: Server, function: str, tmp_path: Path) -> None:
    user_arn, keys = user_with_keys(
        server, {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn(function)}
    )
    other = unique("other")
    deploy_python(server.client(), other, "def handler(event, context):\n    return 'other'\n")
    as_user = server.boto("lambda", keys=keys)

    assert invoke(as_user, function, {"n": 1})[1] == {"got": {"n": 1}}
    out = tmp_path / "out.json"
    done = server.aws_cli(
        "invoke",
        "--function-name",
        function,
        "--payload",
        '{"n": 2}',
        str(out),
        env=cli_credentials(keys),
    )
    assert json.loads(out.read_text()) == {"got": {"n": 2}}, done.stderr

    refused = {
        "invoke another": (as_user.invoke, {"FunctionName": other}, "lambda:InvokeFunction", arn(other)),
        "list": (as_user.list_functions, {}, "lambda:ListFunctions", "*"),
        "read": (as_user.get_function, {"FunctionName": function}, "lambda:GetFunction", arn(function)),
        "delete": (
            as_user.delete_function,
            {"FunctionName": function},
            "lambda:DeleteFunction",
            arn(function),
        ),
        "reconfigure": (
            as_user.update_function_configuration,
            {"FunctionName": function, "Timeout": 9},
            "lambda:UpdateFunctionConfiguration",
            arn(function),
        ),
        "create": (
            as_user.create_function,
            {
                "FunctionName": "planted",
                "Runtime": "python3.12",
                "Role": ROLE,
                "Handler": "handler.handler",
                "Code": {"ZipFile": b"PK"},
            },
            "lambda:CreateFunction",
            arn("planted"),
        ),
        "open to all": (
            as_user.add_permission,
            {
                "FunctionName": function,
                "StatementId": "s",
                "Action": "lambda:InvokeFunction",
                "Principal": "*",
            },
            "lambda:AddPermission",
            arn(function),
        ),
    }
    for what, (call, args, action, resource) in refused.items():
        assert refusal(call, **args) == (403, "AccessDeniedException", denied(user_arn, action, resource)), (
            what
        )

    iam_status, iam_code, iam_message = refusal(server.boto("iam", keys=keys).list_users)
    assert (iam_status, iam_code) == (403, "AccessDenied")
    assert iam_message == denied(user_arn, "iam:ListUsers", f"arn:aws:iam::{ACCOUNT}:user/")
    assert refusal(server.boto("scheduler", keys=keys).list_schedules) == (
        403,
        "AccessDeniedException",
        denied(user_arn, "scheduler:ListSchedules", "*"),
    )

    assert cli_refusal(server, "list-functions", env=cli_credentials(keys)) == said(
        "AccessDeniedException", "ListFunctions", denied(user_arn, "lambda:ListFunctions", "*")
    )
    assert cli_refusal(
        server, "delete-function", "--function-name", function, env=cli_credentials(keys)
    ) == said(
        "AccessDeniedException", "DeleteFunction", denied(user_arn, "lambda:DeleteFunction", arn(function))
    )
    assert server.client().get_function(FunctionName=function)["Configuration"]["Timeout"] != 9


def test_a_users_denials_on_lambdads_own_endpoints(server: Server, function: str) -> None:
    """``/_lambdad/...`` answer as the AWS APIs giving the same information would: signed, and allowed
    the same IAM action. ``/health`` stays open."""
    user_arn, keys = user_with_keys(
        server,
        {
            "Effect": "Allow",
            "Action": "logs:FilterLogEvents",
            "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/{function}:*",
        },
    )
    with urllib.request.urlopen(f"{server.endpoint}/health", timeout=5) as answer:
        assert json.load(answer)["status"] == "ok"
    for path in ("/_lambdad/nodes", "/_lambdad/logs?group=x"):
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(server.endpoint + path, timeout=5)
        assert unsigned.value.code == 403
        assert (
            unsigned.value.headers["x-amzn-ErrorType"].split(":")[0] == "MissingAuthenticationTokenException"
        )

    invoke(server.client(), function, {"n": 0})
    events = server.own(f"/_lambdad/logs?group=/aws/lambda/{function}", keys=keys)["Events"]
    assert any(e["message"].startswith("START RequestId") for e in events)
    group = f"/aws/lambda/{unique('elsewhere')}"
    refused = {
        f"/_lambdad/logs?group={group}": (
            "logs:FilterLogEvents",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:",
        ),
        "/_lambdad/nodes": ("lambda:GetAccountSettings", "*"),
        "/_lambdad/event-source-mappings": ("lambda:ListEventSourceMappings", "*"),
        "/_lambdad/schedules": ("scheduler:ListSchedules", "*"),
    }
    for path, (action, resource) in refused.items():
        with pytest.raises(urllib.error.HTTPError) as answer:
            server.own(path, keys=keys)
        assert answer.value.code == 403, path
        assert answer.value.headers["x-amzn-ErrorType"].split(":")[0] == "AccessDeniedException"
        assert json.loads(answer.value.read())["Message"] == denied(user_arn, action, resource)


def test_lambdad_commands_sign_with_the_default_credentials(server: Server, function: str) -> None:
    invoke(server.client(), function, {"n": 3})
    as_root = subprocess.run(
        [str(LAMBDAD), "logs", function, "--endpoint", server.endpoint],
        env=server.cli_env(COLUMNS="300"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert as_root.returncode == 0, as_root.stderr
    assert "START RequestId" in as_root.stdout
    _, keys = user_with_keys(server)
    as_user = subprocess.run(
        [str(LAMBDAD), "nodes", "--endpoint", server.endpoint],
        env={**server.cli_env(COLUMNS="300"), **cli_credentials(keys)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert as_user.returncode == 1
    assert "AccessDeniedException" in as_user.stderr and "lambda:GetAccountSettings" in " ".join(
        as_user.stderr.split()
    )


def test_a_function_acts_with_its_execution_roles_policies(server: Server, function: str) -> None:
    """boto3 inside the function signs with the role session's credentials lambdad gave it; the role's
    policy allows lambda:ListFunctions and nothing lets it delete."""
    iam = server.boto("iam")
    role_name = unique("lister")
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="list",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}),
    )
    source = """
import os, boto3, botocore.exceptions

def handler(event, context):
    client = boto3.client("lambda")
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    try:
        client.delete_function(FunctionName=event["victim"])
        deleted = None
    except botocore.exceptions.ClientError as error:
        deleted = [error.response["Error"]["Code"], error.response["Error"]["Message"]]
    return {"key": os.environ["AWS_ACCESS_KEY_ID"][:4], "names": names, "delete": deleted}
"""
    name = unique("lister")
    deploy_python(server.client(), name, source, Role=role_arn)
    answer = invoke(server.client(read_timeout=60), name, {"victim": function})[1]
    assert answer["key"] == "ASIA"  # a session of its role
    assert {name, function} <= set(answer["names"])
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
    assert answer["delete"] == [
        "AccessDeniedException",
        denied(session, "lambda:DeleteFunction", arn(function)),
    ]
    assert server.client().get_function(FunctionName=function)


def test_assume_role_then_call_as_the_role(server: Server, function: str) -> None:
    """A user allowed sts:AssumeRole on a role the role trusts it for; the session acts with the role's
    policies, not the user's."""
    iam = server.boto("iam")
    user_arn, keys = user_with_keys(server)
    role_name = unique("operator")
    trust = {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="read",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": ["lambda:ListFunctions", "lambda:GetFunction"], "Resource": "*"}
        ),
    )
    # The user's own policy does not let it list; the role trusts it by name, which is enough in one account.
    assert refusal(server.boto("lambda", keys=keys).list_functions)[1] == "AccessDeniedException"
    session = server.boto("sts", keys=keys).assume_role(RoleArn=role_arn, RoleSessionName="ops")
    as_role = keys_of(session["Credentials"])
    assert as_role["aws_access_key_id"].startswith("ASIA")
    who = server.boto("sts", keys=as_role).get_caller_identity()
    assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/ops"
    assert who["Arn"] == assumed
    client = server.boto("lambda", keys=as_role)
    assert function in {f["FunctionName"] for f in client.list_functions()["Functions"]}
    assert client.get_function(FunctionName=function)["Configuration"]["FunctionName"] == function
    assert refusal(client.delete_function, FunctionName=function) == (
        403,
        "AccessDeniedException",
        denied(assumed, "lambda:DeleteFunction", arn(function)),
    )
    listed = server.aws_cli("list-functions", env=cli_credentials(as_role))
    assert function in listed.stdout
    # Someone the role does not trust may not assume it.
    stranger_arn, stranger = user_with_keys(
        server, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    )
    status, code, message = refusal(
        server.boto("sts", keys=stranger).assume_role, RoleArn=role_arn, RoleSessionName="xx"
    )
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith(
        f"User: {stranger_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


def test_another_accounts_root_sees_none_of_this_accounts_schedules(server: Server, function: str) -> None:
    """``/_lambdad/schedules`` and ``event-source-mappings`` list the signer's account's only."""
    made = subprocess.run(
        [
            str(LAMBDAD),
            "accounts",
            "create",
            "--name",
            unique("team"),
            "--json",
            "--data-dir",
            str(server.data_dir),
        ],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    team = json.loads(made.stdout)
    team_root = {"aws_access_key_id": team["AccessKeyId"], "aws_secret_access_key": team["SecretAccessKey"]}
    name = unique("nightly")
    server.boto("scheduler").create_schedule(
        Name=name,
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn(function), "RoleArn": ROLE},
    )
    try:
        assert name in {s["Name"] for s in server.own("/_lambdad/schedules")["Schedules"]}
        assert server.own("/_lambdad/schedules", keys=team_root)["Schedules"] == []
        assert server.own("/_lambdad/event-source-mappings", keys=team_root)["EventSourceMappings"] == []
    finally:
        server.boto("scheduler").delete_schedule(Name=name)
