"""Authentication end to end, against a real ``lambdad serve --auth sigv4``: every way a request fails
authentication, through boto3 and through the AWS CLI, answered with AWS's error codes, HTTP status and
messages (botocore raises the ClientError it raises against AWS); the root key printed once at the first
start (``test_access.py``: what signed callers may do).

The clients' own clocks are moved where a test needs a skewed or expired signature (botocore's
``get_current_datetime``, in process for boto3 and through ``sitecustomize`` for the AWS CLI's own
botocore): time is the edge the server cannot be asked about.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore
import botocore.auth
import pytest

from tests.e2e.auth_support import (
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    MISMATCH,
    MISSING,
    cli_refusal,
    guarded_function,
    keys_of,
    policy,
    refusal,
    said,
    signed_server,
    user_with_keys,
)
from tests.e2e.invoke_support import invoke, unique
from tests.support import ACCOUNT, CREDENTIALS, Server, cli_credentials

pytestmark = pytest.mark.e2e

# Run inside the AWS CLI (through ``sitecustomize``): moves its clock by CLOCK_SHIFT_S seconds, or
# replaces the body of every request after it is signed by TAMPERED_BODY. The CLI carries its own
# botocore, imported as ``botocore`` once ``awscli`` is (its import alias).
SITECUSTOMIZE = """
import datetime, os
import awscli
import botocore.auth as auth
import botocore.session

if "CLOCK_SHIFT_S" in os.environ:
    _now, _shift = auth.get_current_datetime, datetime.timedelta(seconds=int(os.environ["CLOCK_SHIFT_S"]))
    auth.get_current_datetime = lambda *args, **kwargs: _now(*args, **kwargs) + _shift

if "TAMPERED_BODY" in os.environ:
    def _tamper(request, **_):
        request.body = os.environ["TAMPERED_BODY"].encode()
        request.headers["Content-Length"] = str(len(request.body))

    _init = botocore.session.Session.__init__

    def _init_tampering(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.register("before-send", _tamper)

    botocore.session.Session.__init__ = _init_tampering
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from signed_server(tmp_path_factory)


@pytest.fixture(scope="module")
def function(server: Server) -> str:
    return guarded_function(server)


def shifted_clock(monkeypatch: pytest.MonkeyPatch, shift: timedelta) -> None:
    """boto3's clock (botocore's signer reads it) moved by ``shift``."""
    now = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now(*a, **k) + shift)


def cli_clock(tmp_path: Path, shift: timedelta) -> dict[str, str]:
    """The environment giving the AWS CLI a clock moved by ``shift``."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": str(tmp_path), "CLOCK_SHIFT_S": str(int(shift.total_seconds()))}


def cli_tampering(tmp_path: Path, body: str) -> dict[str, str]:
    """The environment making the AWS CLI send ``body`` in place of the body it signed."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": str(tmp_path), "TAMPERED_BODY": body}


def starts(server: Server, function: str) -> int:
    """How many invocations of ``function`` began (START lines in its log group)."""
    events = server.own(f"/_lambdad/logs?group=/aws/lambda/{function}")["Events"]
    return sum(event["message"].startswith("START RequestId") for event in events)


# --- every authentication failure, boto3 and the AWS CLI ---------------------------------------------------


def test_an_unsigned_request_is_missing_its_token(server: Server) -> None:
    client = server.boto("lambda", signature_version=botocore.UNSIGNED)
    assert refusal(client.list_functions) == (403, "MissingAuthenticationTokenException", MISSING)
    assert cli_refusal(server, "list-functions", "--no-sign-request") == said(
        "MissingAuthenticationTokenException", "ListFunctions", MISSING
    )


def test_an_unknown_key_is_unrecognized(server: Server) -> None:
    stranger = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x" * 40}
    client = server.boto("lambda", keys=stranger)
    assert refusal(client.list_functions) == (403, "UnrecognizedClientException", INVALID_TOKEN)
    assert cli_refusal(server, "list-functions", env=cli_credentials(stranger)) == said(
        "UnrecognizedClientException", "ListFunctions", INVALID_TOKEN
    )


def test_a_wrong_secret_does_not_match(server: Server) -> None:
    wrong = {**CREDENTIALS, "aws_secret_access_key": "W" * 40}
    client = server.boto("lambda", keys=wrong)
    assert refusal(client.list_functions) == (403, "InvalidSignatureException", MISMATCH)
    assert cli_refusal(server, "list-functions", env=cli_credentials(wrong)) == said(
        "InvalidSignatureException", "ListFunctions", MISMATCH
    )


def test_a_request_altered_after_signing_does_not_match(
    server: Server, function: str, tmp_path: Path
) -> None:
    """The body changed on the way (after the client signed it): refused, and the function never runs."""
    client = server.client()

    def tamper(request: Any, **_: Any) -> None:
        request.body = b'{"amount": 1000000}'
        request.headers["Content-Length"] = str(len(request.body))

    before = starts(server, function)
    client.meta.events.register("before-send.lambda.Invoke", tamper)
    assert refusal(client.invoke, FunctionName=function, Payload=b'{"amount": 1}') == (
        403,
        "InvalidSignatureException",
        MISMATCH,
    )
    printed = cli_refusal(
        server,
        "invoke",
        "--function-name",
        function,
        "--payload",
        '{"amount": 1}',
        str(tmp_path / "out.json"),
        env=cli_tampering(tmp_path, '{"amount": 1000000}'),
    )
    assert printed == said("InvalidSignatureException", "Invoke", MISMATCH)
    assert not (tmp_path / "out.json").exists() or "1000000" not in (tmp_path / "out.json").read_text()
    invoke(server.client(), function, {"amount": 1})  # the log has caught up with every invocation
    assert starts(server, function) == before + 1


@pytest.mark.parametrize(
    ("shift", "words"),
    [(timedelta(minutes=-10), "Signature expired"), (timedelta(minutes=10), "Signature not yet current")],
)
def test_a_skewed_clock_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shift: timedelta, words: str
) -> None:
    """More than 5 minutes between the client's clock and the server's, either way (Lambda's bound)."""
    shifted_clock(monkeypatch, shift)
    status, code, message = refusal(server.client().list_functions)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(f"{words}: ")
    bound = "- 5 min.)" if shift < timedelta() else "+ 5 min.)"
    assert message.endswith(bound), message
    printed = cli_refusal(server, "list-functions", env=cli_clock(tmp_path, shift))
    assert printed.startswith(f"{said('InvalidSignatureException', 'ListFunctions', words)}: ")
    assert printed.endswith(bound)
    # Within the bound, a clock a little off is fine (as on AWS).
    monkeypatch.undo()
    shifted_clock(monkeypatch, shift / 5)
    assert server.client().list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_inactive_key_is_unrecognized_until_made_active_again(server: Server) -> None:
    iam = server.boto("iam")
    user_arn, keys = user_with_keys(
        server, {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}
    )
    name = user_arn.rsplit("/", 1)[1]
    client = server.boto("lambda", keys=keys)
    assert "Functions" in client.list_functions()
    iam.update_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"], Status="Inactive")
    assert refusal(client.list_functions) == (403, "UnrecognizedClientException", INVALID_TOKEN)
    assert cli_refusal(server, "list-functions", env=cli_credentials(keys)) == said(
        "UnrecognizedClientException", "ListFunctions", INVALID_TOKEN
    )
    iam.update_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"], Status="Active")
    assert "Functions" in client.list_functions()
    iam.delete_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"])
    assert refusal(client.list_functions) == (403, "UnrecognizedClientException", INVALID_TOKEN)


def test_an_expired_session_token_is_expired(server: Server) -> None:
    """A role session past its expiry. STS issues 15 minutes at least, so the session's expiry is moved
    into the past in the server's store (the one clock the test cannot move otherwise)."""
    iam = server.boto("iam")
    name = unique("brief")
    trust = {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="list",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}),
    )
    session = server.boto("sts").assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900)
    keys = keys_of(session["Credentials"])
    client = server.boto("lambda", keys=keys)
    assert "Functions" in client.list_functions()  # valid until it expires

    with sqlite3.connect(server.data_dir / "lambdad.db") as database:
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(sep=" ")
        moved = database.execute(
            "UPDATE sts_sessions SET expires_at = ? WHERE access_key_id = ?",
            (past, keys["aws_access_key_id"]),
        ).rowcount
    assert moved == 1

    assert refusal(client.list_functions) == (403, "ExpiredTokenException", EXPIRED_TOKEN)
    assert cli_refusal(server, "list-functions", env=cli_credentials(keys)) == said(
        "ExpiredTokenException", "ListFunctions", EXPIRED_TOKEN
    )
    # The key without its token, or the token of another session, is no key at all.
    tokenless = {k: v for k, v in keys.items() if k != "aws_session_token"}
    assert refusal(server.boto("lambda", keys=tokenless).list_functions)[1] == "UnrecognizedClientException"


def test_an_expired_presigned_url_is_refused(server: Server) -> None:
    """A presigned GET (boto3's generate_presigned_url) works within its X-Amz-Expires, then not."""
    client = server.client()
    url = client.generate_presigned_url("list_functions", ExpiresIn=2)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert "Functions" in json.load(answer)
    time.sleep(3)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(url, timeout=10)
    assert expired.value.code == 403
    assert expired.value.headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"
    message = json.loads(expired.value.read())["message"]
    assert message.startswith("Signature expired: ") and message.endswith(" - 2 sec.)"), message
    # Its signature still names its date: the same URL with another expiry is another signature.
    longer = url.replace("X-Amz-Expires=2", "X-Amz-Expires=3600")
    with pytest.raises(urllib.error.HTTPError) as altered:
        urllib.request.urlopen(longer, timeout=10)
    assert altered.value.code == 403
    assert json.loads(altered.value.read())["message"] == MISMATCH


# --- the root key ---------------------------------------------------------------------------------------


def test_the_root_key_is_printed_once_at_the_first_start(tmp_path: Path) -> None:
    """Without LAMBDAD_ROOT_*, the first start makes the root key and prints it; later starts do not, and
    the key works."""
    fresh = Server(tmp_path / "data", auth=False, env={"LAMBDAD_AUTH": "sigv4"})
    fresh.start(timeout=60)
    try:
        first = fresh.log_path.read_text()
        lines = dict(
            line.strip().split("=", 1) for line in first.splitlines() if line.strip().startswith("AWS_")
        )
        key, secret = lines["AWS_ACCESS_KEY_ID"], lines["AWS_SECRET_ACCESS_KEY"]
        assert key.startswith("AKIA") and len(key) == 20 and len(secret) == 40
        assert "shown this once" in first
        fresh.stop()
        fresh.start(timeout=60)
        later = fresh.log_path.read_text()[len(first) :]
        assert "lambdad serving account" in later or "Application startup complete" in later
        assert key not in later and secret not in later
        root = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        identity = fresh.boto("sts", keys=root).get_caller_identity()
        assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
        assert "Functions" in fresh.boto("lambda", keys=root).list_functions()
        # Nothing under the data directory holds the secret in plain text.
        assert not [p for p in fresh.data_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    finally:
        fresh.stop()
