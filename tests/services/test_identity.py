"""IdentityService and StsService on a real SQLite store: AWS's validation and errors, secrets sealed at
rest, the root key bootstrap, policies and the ports the verifier and the authorizer read."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from lambdad.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from lambdad.models import Principal, PrincipalKind
from lambdad.services.identity import IdentityService
from lambdad.services.managed_policies import aws_managed_policies
from lambdad.services.sts import StsService
from lambdad.store import Database
from lambdad.store.identity import ROLE, USER
from lambdad.store.keyring import KeyRing
from lambdad.store.schema import iam_access_keys, sts_sessions
from tests.store.conftest import fresh_postgres

ACCOUNT = "000000000000"
ROOT = Principal.root(ACCOUNT)
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def account_trust(account: str = ACCOUNT) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "sts:AssumeRole",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 10, 0, 0, 123000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def parts(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[IdentityService, StsService, Database, Clock]]:
    """The services on each database lambdad supports."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
            database.migrate()
            stack.callback(database.dispose)
        else:
            database = stack.enter_context(fresh_postgres())
        ring = KeyRing([secrets.token_bytes(32)])
        clock = Clock()
        identities = IdentityService(database, ring, clock=clock)
        yield identities, StsService(database, ring, identities, clock=clock), database, clock


def test_bootstrap_makes_the_root_key_once_and_seals_its_secret(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, database, _ = parts
    made = identities.bootstrap(ACCOUNT)
    assert made is not None
    key_id, secret = made
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key_id) and re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    assert identities.bootstrap(ACCOUNT) is None  # later starts print nothing
    with database.read() as connection:
        stored = connection.execute(select(iam_access_keys.c.secret)).scalar_one()
    assert secret not in stored and stored.startswith("k1:")
    found = sts.signing_key(key_id)
    assert found is not None and found.secret_access_key == secret and found.active
    assert (
        found.principal.kind is PrincipalKind.ROOT and found.principal.arn == f"arn:aws:iam::{ACCOUNT}:root"
    )
    assert sts.signing_key("AKIAUNKNOWNUNKNOWN12") is None


def test_bootstrap_takes_a_given_root_key_and_checks_its_form(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, *_ = parts
    with pytest.raises(ValueError, match="both"):
        identities.bootstrap(ACCOUNT, "AKIAIOSFODNN7EXAMPLE")
    with pytest.raises(ValueError, match="AKIA"):
        identities.bootstrap(ACCOUNT, "nope", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    with pytest.raises(ValueError, match="40 characters"):
        identities.bootstrap(ACCOUNT, "AKIAIOSFODNN7EXAMPLE", "short")
    given = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert identities.bootstrap(ACCOUNT, *given) == given
    assert sts.signing_key(given[0]).secret_access_key == given[1]  # type: ignore[union-attr]


def test_accounts_are_kept_apart(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, *_ = parts
    identities.bootstrap(ACCOUNT)
    other, key_id, _secret = identities.create_account(name="team-b")
    assert re.fullmatch(r"\d{12}", other) and other != ACCOUNT
    assert sts.signing_key(key_id).principal == Principal(  # type: ignore[union-attr]
        other, PrincipalKind.ROOT, f"arn:aws:iam::{other}:root", other, access_key_id=key_id
    )
    assert [(a.id, a.name) for a in identities.list_accounts()] == sorted(
        [(ACCOUNT, "default"), (other, "team-b")]
    )
    with pytest.raises(ValueError, match="exists"):
        identities.create_account(other)
    with pytest.raises(ValueError, match="12 digits"):
        identities.create_account("123")
    identities.create_user(ACCOUNT, "alice")
    identities.create_user(other, "alice")  # same name, other account
    with pytest.raises(NoSuchEntity, match=re.escape("The user with name bob cannot be found.")):
        identities.get_user(other, "bob")


def test_users_with_awss_validation_and_errors(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    user = identities.create_user(ACCOUNT, "Alice", "/team/")
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/team/Alice" and user["Path"] == "/team/"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    with pytest.raises(EntityAlreadyExists, match=r"^User with name alice already exists\.$"):
        identities.create_user(ACCOUNT, "alice")
    with pytest.raises(ValidationError, match=r"Value 'bad name' at 'userName' .*pattern: \[\\w\+=,\.@-\]\+"):
        identities.create_user(ACCOUNT, "bad name")
    with pytest.raises(ValidationError, match="length less than or equal to 64"):
        identities.create_user(ACCOUNT, "a" * 65)
    with pytest.raises(ValidationError, match="'path'"):
        identities.create_user(ACCOUNT, "bob", "noslash")
    assert identities.get_user(ACCOUNT, "ALICE")["UserName"] == "Alice"
    with pytest.raises(NoSuchEntity, match=r"^The user with name nobody cannot be found\.$"):
        identities.delete_user(ACCOUNT, "nobody")


def test_listing_users_pages_with_markers(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    for name in ("u1", "u2", "u3"):
        identities.create_user(ACCOUNT, name)
    page, marker = identities.list_users(ACCOUNT, None, None, 2)
    assert [u["UserName"] for u in page] == ["u1", "u2"] and marker
    rest, end = identities.list_users(ACCOUNT, None, marker, 2)
    assert [u["UserName"] for u in rest] == ["u3"] and end is None
    with pytest.raises(ValidationError, match="maxItems"):
        identities.list_users(ACCOUNT, None, None, 1001)


def test_access_keys_two_per_user_and_delete_conflicts(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, *_ = parts
    identities.create_user(ACCOUNT, "bob")
    first = identities.create_access_key(ACCOUNT, "bob")
    identities.create_access_key(ACCOUNT, "bob")
    assert first["UserName"] == "bob" and first["Status"] == "Active" and len(first["SecretAccessKey"]) == 40
    with pytest.raises(LimitExceeded, match=r"^Cannot exceed quota for AccessKeysPerUser: 2$"):
        identities.create_access_key(ACCOUNT, "bob")
    listed = identities.list_access_keys(ACCOUNT, "bob")
    assert len(listed) == 2 and all("SecretAccessKey" not in key for key in listed)
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must delete access keys first\.$"):
        identities.delete_user(ACCOUNT, "bob")
    identities.update_access_key(ACCOUNT, "bob", first["AccessKeyId"], "Inactive")
    found = sts.signing_key(first["AccessKeyId"])
    assert found is not None and not found.active and found.principal.kind is PrincipalKind.USER
    assert found.principal.arn == f"arn:aws:iam::{ACCOUNT}:user/bob"
    with pytest.raises(NoSuchEntity, match=r"The Access Key with id AKIANOPE cannot be found\."):
        identities.delete_access_key(ACCOUNT, "bob", "AKIANOPE")
    with pytest.raises(NoSuchEntity, match="cannot be found"):  # another user's key is not found
        identities.create_user(ACCOUNT, "eve")
        identities.delete_access_key(ACCOUNT, "eve", first["AccessKeyId"])
    for key in listed:
        identities.delete_access_key(ACCOUNT, "bob", key["AccessKeyId"])
    identities.put_inline_policy(ACCOUNT, USER, "bob", "p", ALLOW_ALL)
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must delete policies first\.$"):
        identities.delete_user(ACCOUNT, "bob")
    identities.delete_inline_policy(ACCOUNT, USER, "bob", "p")
    identities.policies.attach_policy(ACCOUNT, USER, "bob", "arn:aws:iam::aws:policy/AdministratorAccess")
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must detach all policies first\.$"):
        identities.delete_user(ACCOUNT, "bob")
    identities.policies.detach_policy(ACCOUNT, USER, "bob", "arn:aws:iam::aws:policy/AdministratorAccess")
    identities.delete_user(ACCOUNT, "bob")


def test_the_implicit_user_is_the_caller(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    user = Principal(ACCOUNT, PrincipalKind.USER, f"arn:aws:iam::{ACCOUNT}:user/x/bob", "AIDAX")
    session = Principal(
        ACCOUNT, PrincipalKind.ASSUMED_ROLE, "arn:aws:sts::0:assumed-role/r/s", "AROAX:s", "arn"
    )
    assert identities.implicit_user(user, None) == "bob"
    assert identities.implicit_user(ROOT, None) is None
    assert identities.implicit_user(session, "named") == "named"
    with pytest.raises(ValidationError, match="Must specify userName when calling with non-User credentials"):
        identities.implicit_user(session, None)
    assert identities.caller_user(ROOT)["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_policy_documents_are_checked_and_answered_url_encoded(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    identities.create_role(ACCOUNT, "r", LAMBDA_TRUST)
    with pytest.raises(MalformedPolicyDocument, match="This policy contains invalid Json"):
        identities.put_inline_policy(ACCOUNT, ROLE, "r", "p", "{not json")
    with pytest.raises(MalformedPolicyDocument, match=re.escape("Syntax errors in policy.")):
        identities.put_inline_policy(ACCOUNT, ROLE, "r", "p", '{"Version": "2012-10-17"}')
    with pytest.raises(MalformedPolicyDocument, match="should not specify a principal"):
        identities.put_inline_policy(
            ACCOUNT, ROLE, "r", "p", LAMBDA_TRUST.replace('"Action"', '"Resource":"*","Action"')
        )
    with pytest.raises(MalformedPolicyDocument, match="Has prohibited field Resource"):
        identities.update_assume_role_policy(
            ACCOUNT, "r", ALLOW_ALL.replace('"Effect"', '"Principal":"*","Effect"')
        )
    identities.put_inline_policy(ACCOUNT, ROLE, "r", "p", ALLOW_ALL)
    answer = identities.get_inline_policy(ACCOUNT, ROLE, "R", "p")
    assert answer["RoleName"] == "r" and "%22" in answer["PolicyDocument"]
    assert json.loads(unquote(answer["PolicyDocument"])) == json.loads(ALLOW_ALL)
    with pytest.raises(NoSuchEntity, match=r"^The role policy with name q cannot be found\.$"):
        identities.get_inline_policy(ACCOUNT, ROLE, "r", "q")
    big = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "x:" + "a" * 10300, "Resource": "*"}],
        }
    )
    with pytest.raises(LimitExceeded, match="Maximum policy size of 10240 bytes exceeded for role r"):
        identities.put_inline_policy(ACCOUNT, ROLE, "r", "big", big)


def test_roles_and_their_limits(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    role = identities.create_role(ACCOUNT, "exec", LAMBDA_TRUST, "/service-role/", "runs things", 7200)
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/service-role/exec"
    assert "MaxSessionDuration" not in role
    assert identities.get_role(ACCOUNT, "exec")["MaxSessionDuration"] == 7200
    assert re.fullmatch(r"AROA[A-Z2-7]{17}", role["RoleId"]) and role["Description"] == "runs things"
    with pytest.raises(EntityAlreadyExists, match=r"^Role with name EXEC already exists\.$"):
        identities.create_role(ACCOUNT, "EXEC", LAMBDA_TRUST)
    with pytest.raises(ValidationError, match="maxSessionDuration"):
        identities.create_role(ACCOUNT, "short", LAMBDA_TRUST, max_session_duration=60)
    assert identities.get_role(ACCOUNT, "exec")["RoleLastUsed"] == {}
    assert identities.trust_policy(role["Arn"]) == LAMBDA_TRUST
    assert identities.trust_policy(f"arn:aws:iam::{ACCOUNT}:role/exec") is None  # path must match
    identities.policies.attach_policy(
        ACCOUNT, ROLE, "exec", "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    )
    with pytest.raises(DeleteConflict, match="must detach all policies first"):
        identities.delete_role(ACCOUNT, "exec")
    with pytest.raises(NoSuchEntity, match=r"^The role with name gone cannot be found\.$"):
        identities.get_role(ACCOUNT, "gone")


def test_managed_policies_attachments_and_the_policies_that_apply(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    created = identities.policies.create_policy(ACCOUNT, "Deploy", ALLOW_ALL, "/ops/", "deploys")
    arn = f"arn:aws:iam::{ACCOUNT}:policy/ops/Deploy"
    assert created["Arn"] == arn and created["DefaultVersionId"] == "v1" and created["AttachmentCount"] == 0
    assert re.fullmatch(r"ANPA[A-Z2-7]{17}", created["PolicyId"])
    with pytest.raises(
        EntityAlreadyExists,
        match=re.escape("A policy called Deploy already exists. Duplicate names are not allowed."),
    ):
        identities.policies.create_policy(ACCOUNT, "Deploy", ALLOW_ALL)
    identities.create_user(ACCOUNT, "bob")
    identities.policies.attach_policy(ACCOUNT, USER, "bob", arn)
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    identities.policies.attach_policy(ACCOUNT, USER, "bob", basic)
    inline = ALLOW_ALL.replace("Allow", "Deny")
    identities.put_inline_policy(ACCOUNT, USER, "bob", "no", inline)
    assert identities.policies.get_policy(ACCOUNT, arn)["AttachmentCount"] == 1
    with pytest.raises(DeleteConflict, match=re.escape("Cannot delete a policy attached to entities.")):
        identities.policies.delete_policy(ACCOUNT, arn)
    with pytest.raises(
        NoSuchEntity, match=f"Policy arn:aws:iam::{ACCOUNT}:policy/Nope does not exist or is not attachable."
    ):
        identities.policies.attach_policy(ACCOUNT, USER, "bob", f"arn:aws:iam::{ACCOUNT}:policy/Nope")
    with pytest.raises(InvalidInput, match=re.escape("ARN nonsense is not valid.")):
        identities.policies.attach_policy(ACCOUNT, USER, "bob", "nonsense")
    attached, _ = identities.policies.list_attached_policies(ACCOUNT, USER, "bob", None, None, None)
    assert attached == [
        {"PolicyName": "Deploy", "PolicyArn": arn},
        {"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": basic},
    ]
    bob = Principal(ACCOUNT, PrincipalKind.USER, f"arn:aws:iam::{ACCOUNT}:user/bob", "AIDAX")
    documents = identities.identity_policies(bob)
    assert documents[0] == inline and ALLOW_ALL in documents
    assert json.loads(documents[2])["Statement"][0]["Action"] == [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    assert identities.identity_policies(ROOT) == []
    version = identities.policies.get_policy_version(ACCOUNT, arn, "v1")
    assert version["IsDefaultVersion"] and json.loads(unquote(version["Document"])) == json.loads(ALLOW_ALL)
    with pytest.raises(NoSuchEntity, match="version v2 does not exist"):
        identities.policies.get_policy_version(ACCOUNT, arn, "v2")
    assert [v["VersionId"] for v in identities.policies.list_policy_versions(ACCOUNT, arn)] == ["v1"]
    identities.policies.detach_policy(ACCOUNT, USER, "bob", arn)
    with pytest.raises(NoSuchEntity, match=f"Policy {arn} was not found."):
        identities.policies.detach_policy(ACCOUNT, USER, "bob", arn)
    identities.policies.delete_policy(ACCOUNT, arn)
    with pytest.raises(NoSuchEntity, match=f"Policy {arn} was not found."):
        identities.policies.get_policy(ACCOUNT, arn)


def test_aws_managed_policies_are_listed_and_readable(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    known = aws_managed_policies()
    for name in (
        "service-role/AWSLambdaBasicExecutionRole",
        "AWSLambda_FullAccess",
        "AWSLambda_ReadOnlyAccess",
        "service-role/AWSLambdaRole",
        "service-role/AWSLambdaSQSQueueExecutionRole",
        "service-role/AWSLambdaKinesisExecutionRole",
        "service-role/AWSLambdaDynamoDBExecutionRole",
        "service-role/AWSLambdaVPCAccessExecutionRole",
        "AdministratorAccess",
        "IAMFullAccess",
    ):
        assert f"arn:aws:iam::aws:policy/{name}" in known
    listed, marker = identities.policies.list_policies(ACCOUNT, "AWS", False, None, None, 3)
    assert len(listed) == 3 and marker is not None
    full = identities.policies.get_policy(ACCOUNT, "arn:aws:iam::aws:policy/AWSLambda_FullAccess")
    assert full["DefaultVersionId"] == "v2" and full["PolicyId"].startswith("ANPA")
    document = json.loads(
        unquote(identities.policies.get_policy_version(ACCOUNT, full["Arn"], "v2")["Document"])
    )
    assert "lambda:*" in document["Statement"][0]["Action"]
    identities.policies.create_policy(ACCOUNT, "Mine", ALLOW_ALL)
    local, _ = identities.policies.list_policies(ACCOUNT, "Local", False, None, None, None)
    assert [p["PolicyName"] for p in local] == ["Mine"]
    assert identities.policies.list_policies(ACCOUNT, "All", True, None, None, None) == ([], None)


def test_assume_role_checks_trust_and_durations(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, database, clock = parts
    role = identities.create_role(ACCOUNT, "admin", account_trust(), max_session_duration=7200)
    bob = Principal(ACCOUNT, PrincipalKind.USER, f"arn:aws:iam::{ACCOUNT}:user/bob", "AIDAX")
    answer = sts.assume_role(bob, role["Arn"], "my-session", 7200)
    credentials = answer["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", credentials["AccessKeyId"])
    assert credentials["Expiration"] == clock.now.replace(microsecond=0) + timedelta(seconds=7200)
    assert answer["AssumedRoleUser"] == {
        "AssumedRoleId": f"{role['RoleId']}:my-session",
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/my-session",
    }
    with database.read() as connection:
        stored = connection.execute(select(sts_sessions)).one()
    assert credentials["SessionToken"] not in str(stored) and credentials["SecretAccessKey"] not in str(
        stored
    )
    key = sts.signing_key(credentials["AccessKeyId"])
    assert key is not None and key.session_token == credentials["SessionToken"]
    assert (
        key.secret_access_key == credentials["SecretAccessKey"]
        and key.expires_at == credentials["Expiration"]
    )
    assert key.principal.role_arn == role["Arn"] and key.principal.user_id == f"{role['RoleId']}:my-session"
    assert sts.get_caller_identity(key.principal) == {
        "UserId": f"{role['RoleId']}:my-session",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/my-session",
    }
    with pytest.raises(ValidationError, match="exceeds the MaxSessionDuration set for this role"):
        sts.assume_role(bob, role["Arn"], "s2", 7201)
    with pytest.raises(ValidationError, match="greater than or equal to 900"):
        sts.assume_role(bob, role["Arn"], "s2", 899)
    with pytest.raises(ValidationError, match="1 hour session limit"):
        sts.assume_role(key.principal, role["Arn"], "chained", 3601)
    with pytest.raises(ValidationError, match="roleSessionName"):
        sts.assume_role(bob, role["Arn"], "bad name")
    stranger = Principal("111111111111", PrincipalKind.USER, "arn:aws:iam::111111111111:user/eve", "AIDAY")
    denied = f"User: {stranger.arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}"
    with pytest.raises(AccessDenied, match=f"^{re.escape(denied)}$"):
        sts.assume_role(stranger, role["Arn"], "s3")
    missing = f"arn:aws:iam::{ACCOUNT}:role/missing"
    with pytest.raises(AccessDenied, match="sts:AssumeRole on resource: " + missing):
        sts.assume_role(bob, missing, "s3")


def test_a_role_session_applies_its_roles_policies(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, *_ = parts
    role = identities.create_role(ACCOUNT, "exec", LAMBDA_TRUST)
    identities.put_inline_policy(ACCOUNT, ROLE, "exec", "all", ALLOW_ALL)
    issued = sts.issue_role_session(role["Arn"], "my-function", 900)
    key = sts.signing_key(issued.access_key_id)
    assert key is not None and key.session_token == issued.session_token
    assert identities.identity_policies(key.principal) == [ALLOW_ALL]
    with pytest.raises(NoSuchEntity, match=re.escape("The role with name ghost cannot be found.")):
        sts.issue_role_session(f"arn:aws:iam::{ACCOUNT}:role/ghost", "f")
    other = identities.create_role(ACCOUNT, "humans", account_trust())
    with pytest.raises(AccessDenied, match="cannot be assumed by Lambda"):
        sts.issue_role_session(other["Arn"], "f")
    confused_deputy = json.loads(LAMBDA_TRUST)
    confused_deputy["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    guarded = identities.create_role(ACCOUNT, "guarded", json.dumps(confused_deputy))
    with pytest.raises(AccessDenied):
        sts.issue_role_session(guarded["Arn"], "f", context={"aws:SourceAccount": "111111111111"})
    assert sts.issue_role_session(guarded["Arn"], "f", context={"aws:SourceAccount": ACCOUNT}).session_token


def test_expired_sessions_still_resolve_with_their_expiry(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, _, clock = parts
    role = identities.create_role(ACCOUNT, "exec", LAMBDA_TRUST)
    issued = sts.issue_role_session(role["Arn"], "f", 900)
    clock.now += timedelta(hours=1)
    key = sts.signing_key(issued.access_key_id)
    assert key is not None and key.expires_at is not None and key.expires_at < clock.now
    clock.now += timedelta(days=2)
    sts.issue_role_session(role["Arn"], "g", 900)  # issuing forgets sessions expired over a day ago
    assert sts.signing_key(issued.access_key_id) is None


def test_trust_is_the_policy_evaluators(parts) -> None:  # type: ignore[no-untyped-def]
    identities, sts, *_ = parts
    bob = Principal(ACCOUNT, PrincipalKind.USER, f"arn:aws:iam::{ACCOUNT}:user/bob", "AIDAX")
    named = {"Effect": "Allow", "Principal": {"AWS": [bob.arn]}, "Action": ["sts:*"]}
    deny = {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}
    mfa = {**named, "Condition": {"StringEquals": {"aws:PrincipalType": "User"}}}
    for name, statements in (("named", [named]), ("denied", [named, deny]), ("conditional", [mfa])):
        identities.create_role(ACCOUNT, name, json.dumps({"Version": "2012-10-17", "Statement": statements}))
    role = f"arn:aws:iam::{ACCOUNT}:role/"
    assert sts.assume_role(bob, role + "named", "s1")["AssumedRoleUser"]["Arn"].endswith("/named/s1")
    with pytest.raises(AccessDenied):
        sts.assume_role(bob, role + "denied", "s1")
    with pytest.raises(AccessDenied):  # the condition needs the request's keys
        sts.assume_role(bob, role + "conditional", "s1")
    assert sts.assume_role(bob, role + "conditional", "s1", context={"aws:PrincipalType": "User"})
    with pytest.raises(AccessDenied):
        sts.assume_role(bob, role + "conditional", "s1", context={"aws:PrincipalType": "AssumedRole"})
    with pytest.raises(MalformedPolicyDocument, match="Trust Policy statement actions can only be"):
        identities.create_role(ACCOUNT, "bad", LAMBDA_TRUST.replace("sts:AssumeRole", "s3:GetObject"))


def test_policy_versions_up_to_five_and_the_default(parts) -> None:  # type: ignore[no-untyped-def]
    identities, *_ = parts
    policies = identities.policies
    arn = policies.create_policy(ACCOUNT, "Versioned", ALLOW_ALL)["Arn"]
    deny = ALLOW_ALL.replace("Allow", "Deny")
    second = policies.create_policy_version(ACCOUNT, arn, deny, True)
    assert (second["VersionId"], second["IsDefaultVersion"]) == ("v2", True)
    assert policies.get_policy(ACCOUNT, arn)["DefaultVersionId"] == "v2"
    for _ in range(3):
        policies.create_policy_version(ACCOUNT, arn, ALLOW_ALL, False)
    with pytest.raises(LimitExceeded, match="A managed policy can have up to 5 versions"):
        policies.create_policy_version(ACCOUNT, arn, ALLOW_ALL, False)
    with pytest.raises(DeleteConflict, match=re.escape("Cannot delete the default version of a policy.")):
        policies.delete_policy_version(ACCOUNT, arn, "v2")
    with pytest.raises(DeleteConflict, match=re.escape("This policy has more than one version.")):
        policies.delete_policy(ACCOUNT, arn)
    policies.set_default_policy_version(ACCOUNT, arn, "v1")
    for version in ("v2", "v3", "v4", "v5"):
        policies.delete_policy_version(ACCOUNT, arn, version)
    six = policies.create_policy_version(ACCOUNT, arn, deny, False)
    assert six["VersionId"] == "v6"  # numbers are never reused
    assert [v["VersionId"] for v in policies.list_policy_versions(ACCOUNT, arn)] == ["v6", "v1"]
    with pytest.raises(NoSuchEntity, match="version v2 does not exist"):
        policies.set_default_policy_version(ACCOUNT, arn, "v2")
    policies.delete_policy_version(ACCOUNT, arn, "v6")
    policies.delete_policy(ACCOUNT, arn)
