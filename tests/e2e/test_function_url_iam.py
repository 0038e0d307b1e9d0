"""Function URLs with AuthType AWS_IAM on a server with ``--auth sigv4``: requests signed by botocore
(``SigV4Auth``, service ``lambda``) with keys made through the server's IAM API, by host name and by
path; allowed by the caller's identity policy or by the function's resource policy only, and from another
account by both; refused with AWS's 403 when unsigned, tampered with, signed by an unknown key or by a
user no policy allows."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import pytest

from tests.e2e.invoke_support import deploy_python, log_messages, unique
from tests.e2e.signed_support import ACCOUNT, client, lambda_role, signed_server, user_keys
from tests.support import LAMBDAD, Server

pytestmark = pytest.mark.e2e

FORBIDDEN = {
    "Message": "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
}
HANDLER = """
import json

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = signed_server(tmp_path_factory.mktemp("lambdad") / "data").start(timeout=60)
    yield running
    running.stop(timeout=60)


@pytest.fixture(scope="module")
def iam(server: Server) -> Any:
    return client(server, "iam")


@pytest.fixture(scope="module")
def function(server: Server, iam: Any) -> dict[str, Any]:
    """A function with an AWS_IAM URL: its name, ARN, URL id and role."""
    name = unique("iam-url")
    role = lambda_role(iam, unique("url-role"))
    lam = client(server, "lambda")
    configuration = deploy_python(lam, name, HANDLER, Role=role)
    config = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    url_id = config["FunctionUrl"].split("//", 1)[1].split(".", 1)[0]
    return {"name": name, "arn": configuration["FunctionArn"], "url_id": url_id}


def signed(
    server: Server,
    keys: dict[str, str],
    url_id: str,
    path: str = "/echo",
    *,
    by_host: bool = True,
    body: bytes = b"",
    tamper: Any = None,
) -> httpx.Response:
    """Send a request signed by botocore as a client of the URL would: by host name (sent to 127.0.0.1
    with the URL's Host header) or by lambdad's path form."""
    if by_host:
        url = f"http://{url_id}.lambda-url.us-east-1.localhost:{server.port}{path}"
    else:
        url = f"{server.endpoint}/_lambdad/urls/{url_id}{path}"
    method = "POST" if body else "GET"
    content_type = {"Content-Type": "application/json"} if body else {}
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=content_type)
    credentials = botocore.credentials.Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"])
    botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    if tamper is not None:
        url, headers, body = tamper(url, headers, body)
    target = url.split(f":{server.port}", 1)[1]
    host = url.split("//", 1)[1].split("/", 1)[0]
    with httpx.Client(base_url=server.endpoint, timeout=60) as http:
        return http.request(method, target, headers={**headers, "Host": host}, content=body)


def allow(*actions: str, resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": resource}


def test_a_user_allowed_by_its_identity_policy_invokes_by_host_and_by_path(
    server: Server, iam: Any, function: dict[str, Any]
) -> None:
    name = unique("url-caller")
    statement = {
        **allow("lambda:InvokeFunctionUrl", resource=function["arn"]),
        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
    }
    keys = user_keys(iam, name, statement)
    for by_host in (True, False):
        answer = signed(server, keys, function["url_id"], "/echo?x=1", by_host=by_host, body=b'{"a": 1}')
        assert answer.status_code == 200, answer.text
        event = answer.json()
        assert event["rawPath"] == "/echo" and event["body"] == '{"a": 1}'
        assert event["requestContext"]["authorizer"]["iam"] == {
            "accessKey": keys["aws_access_key_id"],
            "accountId": ACCOUNT,
            "callerId": iam.get_user(UserName=name)["User"]["UserId"],
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "userId": iam.get_user(UserName=name)["User"]["UserId"],
        }
        assert event["requestContext"]["accountId"] == ACCOUNT


def test_a_user_allowed_by_the_functions_resource_policy_only_invokes(
    server: Server, iam: Any, function: dict[str, Any]
) -> None:
    name = unique("url-granted")
    keys = user_keys(iam, name)  # no identity policy at all
    assert signed(server, keys, function["url_id"]).status_code == 403
    client(server, "lambda").add_permission(
        FunctionName=function["name"],
        StatementId=name,
        Action="lambda:InvokeFunctionUrl",
        Principal=f"arn:aws:iam::{ACCOUNT}:user/{name}",
        FunctionUrlAuthType="AWS_IAM",
    )
    answer = signed(server, keys, function["url_id"], by_host=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["requestContext"]["authorizer"]["iam"]["userArn"].endswith(f":user/{name}")


def test_refusals_answer_aws_403s_and_never_run_the_function(server: Server, iam: Any) -> None:
    lam = client(server, "lambda")
    name = unique("iam-url-shut")
    deploy_python(lam, name, HANDLER, Role=lambda_role(iam, unique("url-role")))
    url_id = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    url_id = url_id.split("//", 1)[1].split(".", 1)[0]
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    denied = user_keys(iam, unique("url-denied"), allow("lambda:InvokeFunction", resource=arn))
    wrong_type = user_keys(
        iam,
        unique("url-none-only"),
        {
            **allow("lambda:InvokeFunctionUrl", resource=arn),
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        },
    )
    allowed = user_keys(iam, unique("url-allowed"), allow("lambda:InvokeFunctionUrl", resource=arn))
    stranger = {"aws_access_key_id": "AKIAW2NOSUCHKEY00000", "aws_secret_access_key": "x" * 40}

    def other_path(url: str, headers: dict[str, str], body: bytes) -> tuple[str, dict[str, str], bytes]:
        return url.replace("/echo", "/other"), headers, body

    def other_body(url: str, headers: dict[str, str], body: bytes) -> tuple[str, dict[str, str], bytes]:
        return url, headers, b'{"a": 2}'

    mismatch = (
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details."
    )
    expected = {
        "no policy allows it": (signed(server, denied, url_id), "AccessDeniedException", FORBIDDEN),
        "allowed for NONE only": (signed(server, wrong_type, url_id), "AccessDeniedException", FORBIDDEN),
        "path changed": (
            signed(server, allowed, url_id, tamper=other_path),
            "InvalidSignatureException",
            {"Message": mismatch},
        ),
        "body changed": (
            signed(server, allowed, url_id, body=b'{"a": 1}', tamper=other_body),
            "InvalidSignatureException",
            {"Message": mismatch},
        ),
        "unknown key": (
            signed(server, stranger, url_id),
            "UnrecognizedClientException",
            {"Message": "The security token included in the request is invalid."},
        ),
    }
    with httpx.Client(base_url=f"{server.endpoint}/_lambdad/urls/{url_id}", timeout=60) as http:
        expected["unsigned"] = (http.get("/echo"), "AccessDeniedException", FORBIDDEN)
    for case, (answer, error_type, body) in expected.items():
        assert answer.status_code == 403, case
        assert answer.headers["x-amzn-ErrorType"] == error_type, case
        assert answer.json() == body, case
    assert log_messages(server, name) == []
    # The same function, a signature that checks out and a policy that allows: it runs.
    assert signed(server, allowed, url_id).status_code == 200
    assert json.loads(signed(server, allowed, url_id, by_host=False).text)["rawPath"] == "/echo"


def other_account(server: Server) -> dict[str, str]:
    """A second account made with ``lambdad accounts create`` on the server's data: its root key."""
    made = subprocess.run(
        [str(LAMBDAD), "accounts", "create", "--json", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(made.stdout)
    return {
        "account": answer["AccountId"],
        "aws_access_key_id": answer["AccessKeyId"],
        "aws_secret_access_key": answer["SecretAccessKey"],
    }


def test_a_caller_from_another_account_needs_both_its_identity_policy_and_the_resource_policy(
    server: Server, function: dict[str, Any]
) -> None:
    other = other_account(server)
    account = other.pop("account")
    their_iam = client(server, "iam", other)
    allowed_name, bare_name = unique("foreign"), unique("foreign-bare")
    allowed = user_keys(their_iam, allowed_name, allow("lambda:InvokeFunctionUrl", resource=function["arn"]))
    bare = user_keys(their_iam, bare_name)
    # Identity policy only: the function's account has not let them in.
    assert signed(server, allowed, function["url_id"]).status_code == 403
    client(server, "lambda").add_permission(
        FunctionName=function["name"],
        StatementId=f"account-{account}",
        Action="lambda:InvokeFunctionUrl",
        Principal=account,
        FunctionUrlAuthType="AWS_IAM",
    )
    answer = signed(server, allowed, function["url_id"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["requestContext"]["authorizer"]["iam"]["accountId"] == account
    # The resource policy only: their own account has not let them.
    refused = signed(server, bare, function["url_id"])
    assert refused.status_code == 403 and refused.json() == FORBIDDEN
