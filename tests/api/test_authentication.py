"""SigV4 on the wire: real boto3 and AWS CLI clients, signing as they do against AWS, against an ``AwsApi``
with an ``Authenticator`` over a dict-backed ``CredentialResolver`` (the identity store's stand-in), served by
uvicorn over HTTP and HTTPS. Each failure answers the code botocore raises against AWS, per protocol:
rest-json Lambda, query STS/IAM, EC2."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdad.api import AwsApi, OperationTable, ServiceApi, Services
from lambdad.api.operations import Call
from lambdad.api.sigv4 import Authenticator, SigningIdentity
from lambdad.errors import InternalFailure
from lambdad.models import Principal, PrincipalKind
from tests.api.served import Served, self_signed_certificate

ACCOUNT = "111111111111"
ALICE = Principal(ACCOUNT, PrincipalKind.USER, f"arn:aws:iam::{ACCOUNT}:user/alice", "AIDAALICE")
GOOD = {"aws_access_key_id": "AKIAALICE00000000001", "aws_secret_access_key": "alice-secret"}
OLD = {
    "aws_access_key_id": "ASIAOLD0000000000001",
    "aws_secret_access_key": "old-secret",
    "aws_session_token": "old-token",
}
UNKNOWN = {"aws_access_key_id": "AKIANOSUCHKEY0000001", "aws_secret_access_key": "x"}
WRONG = {**GOOD, "aws_secret_access_key": "not-alices-secret"}
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


class Keys:
    def resolve(self, access_key_id: str) -> SigningIdentity | None:
        session = Principal(
            ACCOUNT, PrincipalKind.ASSUMED_ROLE, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s", "AROAR:s"
        )
        return {
            GOOD["aws_access_key_id"]: SigningIdentity("alice-secret", ALICE),
            OLD["aws_access_key_id"]: SigningIdentity(
                "old-secret", session, "old-token", datetime.now(UTC) - timedelta(minutes=1)
            ),
        }.get(access_key_id)


lambda_table = OperationTable()
sts = OperationTable()
ec2 = OperationTable()


@lambda_table.operation("ListFunctions")
def list_functions(call: Call) -> dict[str, Any]:
    return {"Functions": [{"FunctionArn": call.scope.function_arn("where")}]}


@sts.operation("GetCallerIdentity")
def get_caller_identity(call: Call) -> dict[str, Any]:
    return {"UserId": call.principal.user_id, "Account": call.principal.account, "Arn": call.principal.arn}


@ec2.operation("DescribeVpcs")
def describe_vpcs(call: Call) -> dict[str, Any]:
    return {"Vpcs": []}


def app(skew: timedelta = timedelta(0)) -> AwsApi:
    apis = [
        ServiceApi("lambda", lambda_table),
        ServiceApi("sts", sts, internal_error=InternalFailure),
        ServiceApi("iam", OperationTable(), internal_error=InternalFailure),
        ServiceApi("ec2", ec2, internal_error=InternalFailure),
        ServiceApi("logs", OperationTable(), internal_error=InternalFailure),
    ]
    authenticator = Authenticator(Keys(), clock=lambda: datetime.now(UTC) + skew)
    return AwsApi(apis, cast(Services, None), "000000000000", "us-east-1", authenticator=authenticator)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with Served(app()) as running:
        yield running


def failure(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_signed_requests_act_as_their_signer(served: Served) -> None:
    identity = served.client("sts", keys=GOOD).get_caller_identity()
    assert (identity["Account"], identity["Arn"], identity["UserId"]) == (ACCOUNT, ALICE.arn, "AIDAALICE")
    functions = served.client("lambda", region="eu-west-1", keys=GOOD).list_functions()["Functions"]
    assert functions == [{"FunctionArn": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:where"}]
    assert served.client("ec2", keys=GOOD).describe_vpcs()["Vpcs"] == []


def test_an_unsigned_request_is_missing_its_token(served: Served) -> None:
    def unsigned(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=served.endpoint,
            region_name="us-east-1",
            config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
        )

    assert failure(unsigned("lambda").list_functions) == (
        "MissingAuthenticationTokenException",
        403,
        "Missing Authentication Token",
    )
    assert failure(unsigned("sts").get_caller_identity) == (
        "MissingAuthenticationToken",
        403,
        "Request is missing Authentication Token",
    )
    assert failure(unsigned("ec2").describe_vpcs)[:2] == ("MissingAuthenticationToken", 403)


def test_an_unknown_key(served: Served) -> None:
    invalid = "The security token included in the request is invalid."
    assert failure(served.client("lambda", keys=UNKNOWN).list_functions) == (
        "UnrecognizedClientException",
        403,
        invalid,
    )
    assert failure(served.client("sts", keys=UNKNOWN).get_caller_identity) == (
        "InvalidClientTokenId",
        403,
        invalid,
    )
    assert failure(served.client("iam", keys=UNKNOWN).list_users) == ("InvalidClientTokenId", 403, invalid)
    # json services (issue 13's) answer as Lambda does.
    assert failure(served.client("logs", keys=UNKNOWN).describe_log_groups) == (
        "UnrecognizedClientException",
        403,
        invalid,
    )
    assert failure(served.client("ec2", keys=UNKNOWN).describe_vpcs) == (
        "AuthFailure",
        401,
        "AWS was not able to validate the provided access credentials",
    )


def test_a_wrong_secret(served: Served) -> None:
    client = served.client("lambda", keys=WRONG)
    with pytest.raises(client.exceptions.ClientError) as raised:
        client.list_functions()
    assert raised.value.response["Error"] == {
        "Code": "InvalidSignatureException",
        "Message": SIGNATURE_MISMATCH,
    }
    assert failure(served.client("sts", keys=WRONG).get_caller_identity) == (
        "SignatureDoesNotMatch",
        403,
        SIGNATURE_MISMATCH,
    )
    assert failure(served.client("ec2", keys=WRONG).describe_vpcs)[:2] == ("AuthFailure", 401)


def test_expired_session_credentials(served: Served) -> None:
    expired = "The security token included in the request is expired"
    assert failure(served.client("lambda", keys=OLD).list_functions) == (
        "ExpiredTokenException",
        403,
        expired,
    )
    assert failure(served.client("sts", keys=OLD).get_caller_identity) == ("ExpiredToken", 403, expired)
    assert failure(served.client("ec2", keys=OLD).describe_vpcs) == (
        "RequestExpired",
        400,
        "Request has expired.",
    )


def test_a_skewed_clock() -> None:
    with Served(app(skew=timedelta(minutes=20))) as skewed:
        code, status, message = failure(skewed.client("lambda", keys=GOOD).list_functions)
        assert (code, status) == ("InvalidSignatureException", 403)
        assert message.startswith("Signature expired: ") and message.endswith(" - 5 min.)")
        assert failure(skewed.client("sts", keys=GOOD).get_caller_identity)[:2] == (
            "SignatureDoesNotMatch",
            403,
        )
        assert failure(skewed.client("ec2", keys=GOOD).describe_vpcs)[:2] == ("RequestExpired", 400)


def test_authentication_comes_before_an_unknown_action(served: Served) -> None:
    request = urllib.request.Request(
        served.endpoint + "/",
        data=b"Action=MakeCoffee&Version=2011-06-15",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert raised.value.code == 403
    assert b"<Code>MissingAuthenticationToken</Code>" in raised.value.read()


def test_a_presigned_url(served: Served) -> None:
    url = served.client("sts", keys=GOOD).generate_presigned_url(
        "get_caller_identity", ExpiresIn=60, HttpMethod="GET"
    )
    with urllib.request.urlopen(url) as answer:
        assert f"<Arn>{ALICE.arn}</Arn>".encode() in answer.read()
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
    assert raised.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in raised.value.read()


def test_the_aws_cli(served: Served) -> None:
    def aws(keys: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
        }
        env.pop("AWS_SESSION_TOKEN", None)
        command = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", served.endpoint, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    ok = aws(GOOD, "sts", "get-caller-identity")
    assert ok.returncode == 0 and ALICE.arn in ok.stdout, ok.stderr
    denied = aws(UNKNOWN, "lambda", "list-functions")
    assert denied.returncode != 0
    assert "(UnrecognizedClientException)" in denied.stderr
    wrong = aws(WRONG, "sts", "get-caller-identity")
    assert "(SignatureDoesNotMatch)" in wrong.stderr


def test_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with Served(app(), ssl_certfile=str(cert), ssl_keyfile=str(key)) as secure:
        secure.verify = str(cert)
        assert secure.endpoint.startswith("https://")
        assert secure.client("sts", keys=GOOD).get_caller_identity()["Arn"] == ALICE.arn
        assert failure(secure.client("lambda", keys=WRONG).list_functions)[:2] == (
            "InvalidSignatureException",
            403,
        )
