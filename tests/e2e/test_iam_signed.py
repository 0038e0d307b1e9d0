"""IAM and STS with SigV4 on: real boto3 clients signing with keys the identity store made (the root key,
a user's key, a role session's key and token), the verifier resolving them through ``StsService``.

The test composes the ``AwsApi`` (IAM, STS and the ``Authenticator`` over ``StsService.resolve``) on a
real store and key ring, over real HTTP, until the composition root wires the same (see the report).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from lambdad.api import AwsApi, Services
from lambdad.api.iam import iam_api
from lambdad.api.sigv4 import Authenticator
from lambdad.api.sts import sts_api
from lambdad.services.identity import IdentityService
from lambdad.services.sts import StsService
from lambdad.store import Database
from lambdad.store.keyring import KeyRing
from tests.api.served import Served

ACCOUNT = "000000000000"


class Clock:
    """The STS service's clock: now, shifted by ``offset`` (to issue sessions that are already over)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclasses.dataclass
class Signed:
    served: Served
    root: dict[str, str]
    clock: Clock

    def client(self, service: str, keys: dict[str, str] | None = None) -> Any:
        return self.served.client(service, keys=keys or self.root)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('signed') / 'lambdad.db'}")
    database.migrate()
    ring = KeyRing([secrets.token_bytes(32)])
    clock = Clock()
    identities = IdentityService(database, ring, clock=clock)
    made = identities.bootstrap(ACCOUNT)
    assert made is not None
    sts = StsService(database, ring, identities, clock=clock)
    others = {
        field.name: None for field in dataclasses.fields(Services) if field.name not in ("identities", "sts")
    }
    services = Services(**cast(dict[str, Any], others), identities=identities, sts=sts)
    api = AwsApi([iam_api(), sts_api()], services, ACCOUNT, "us-east-1", authenticator=Authenticator(sts))
    root = {"aws_access_key_id": made[0], "aws_secret_access_key": made[1]}
    with Served(api) as running:
        yield Signed(running, root, clock)
    database.dispose()


def keys_of(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        **({"aws_session_token": credentials["SessionToken"]} if "SessionToken" in credentials else {}),
    }


def test_the_root_key_signs_as_the_accounts_root(signed: Signed) -> None:
    identity = signed.client("sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"], identity["UserId"]) == (
        ACCOUNT,
        f"arn:aws:iam::{ACCOUNT}:root",
        ACCOUNT,
    )


def test_a_users_key_signs_as_the_user_until_it_is_made_inactive(signed: Signed) -> None:
    iam = signed.client("iam")
    user = iam.create_user(UserName="dave")["User"]
    dave = keys_of(iam.create_access_key(UserName="dave")["AccessKey"])
    identity = signed.client("sts", dave).get_caller_identity()
    assert (identity["Arn"], identity["UserId"]) == (user["Arn"], user["UserId"])
    as_dave = signed.client("iam", dave)
    assert as_dave.get_user()["User"]["UserName"] == "dave"  # no name: the caller
    assert [k["AccessKeyId"] for k in as_dave.list_access_keys()["AccessKeyMetadata"]] == [
        dave["aws_access_key_id"]
    ]
    iam.update_access_key(UserName="dave", AccessKeyId=dave["aws_access_key_id"], Status="Inactive")
    with pytest.raises(ClientError) as inactive:
        signed.client("sts", dave).get_caller_identity()
    assert inactive.value.response["Error"]["Code"] == "InvalidClientTokenId"
    wrong = {**dave, "aws_secret_access_key": "x" * 40}
    iam.update_access_key(UserName="dave", AccessKeyId=dave["aws_access_key_id"], Status="Active")
    with pytest.raises(ClientError) as mismatch:
        signed.client("sts", wrong).get_caller_identity()
    assert mismatch.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_a_role_session_signs_as_the_assumed_role(signed: Signed) -> None:
    iam = signed.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="ops", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    session = signed.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="night-shift")
    keys = keys_of(session["Credentials"])
    identity = signed.client("sts", keys).get_caller_identity()
    assert identity == {
        "UserId": f"{role['RoleId']}:night-shift",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/night-shift",
        "ResponseMetadata": identity["ResponseMetadata"],
    }
    with pytest.raises(ClientError) as not_a_user:
        signed.client("iam", keys).get_user()
    assert not_a_user.value.response["Error"] == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "Must specify userName when calling with non-User credentials",
    }
    chained = signed.client("sts", keys).assume_role(RoleArn=role["Arn"], RoleSessionName="chained")
    assert chained["AssumedRoleUser"]["Arn"].endswith("assumed-role/ops/chained")
    # The session's key without its token, or with another, is not a key anyone holds.
    for broken in ({**keys, "aws_session_token": keys["aws_session_token"][:-4] + "AAAA"},):
        with pytest.raises(ClientError) as refused:
            signed.client("sts", broken).get_caller_identity()
        assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_an_expired_session_answers_expired_token(signed: Signed) -> None:
    iam = signed.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="brief", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    signed.clock.offset = -timedelta(hours=1)  # issued an hour ago, for 15 minutes
    try:
        session = signed.client("sts").assume_role(
            RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=900
        )
    finally:
        signed.clock.offset = timedelta()
    with pytest.raises(ClientError) as expired:
        signed.client("sts", keys_of(session["Credentials"])).get_caller_identity()
    assert expired.value.response["Error"]["Code"] == "ExpiredToken"
    assert expired.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_key_is_refused(signed: Signed) -> None:
    stranger = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x" * 40}
    with pytest.raises(ClientError) as unknown:
        signed.client("iam", stranger).list_users()
    assert unknown.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
