"""The identity store as the authorizer's ``PolicyStore``: what IAM says a user or a role session may do is
what ``Authorizer`` decides (its evaluator and messages are tested in tests/policy and
tests/api/test_authorization.py; here the policies come from the real store)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from lambdad.api.authorization import Authorizer
from lambdad.errors import AccessDeniedException
from lambdad.models import Principal, PrincipalKind, Scope
from lambdad.services.identity import IdentityService
from lambdad.services.sts import StsService
from lambdad.store import Database
from lambdad.store.identity import ROLE, USER
from lambdad.store.keyring import KeyRing

ACCOUNT = "000000000000"
SCOPE = Scope(ACCOUNT, "us-east-1")


def allow(action: str, resource: str = "*") -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    )


def test_users_and_role_sessions_are_authorised_by_their_stored_policies(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.migrate()
    ring = KeyRing([secrets.token_bytes(32)])
    identities = IdentityService(database, ring)
    sts = StsService(database, ring, identities)
    authorizer = Authorizer(identities)
    try:
        user = identities.create_user(ACCOUNT, "erin")
        identities.put_inline_policy(ACCOUNT, USER, "erin", "list", allow("iam:ListUsers"))
        erin = Principal(ACCOUNT, PrincipalKind.USER, user["Arn"], user["UserId"])
        authorizer.authorize(erin, "iam", "ListUsers", {}, SCOPE)
        with pytest.raises(
            AccessDeniedException, match="because no identity-based policy allows the iam:CreateUser"
        ):
            authorizer.authorize(erin, "iam", "CreateUser", {"UserName": "mallory"}, SCOPE)
        identities.policies.attach_policy(ACCOUNT, USER, "erin", "arn:aws:iam::aws:policy/IAMFullAccess")
        authorizer.authorize(erin, "iam", "CreateUser", {"UserName": "mallory"}, SCOPE)

        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = identities.create_role(ACCOUNT, "fn", json.dumps(trust))
        identities.policies.attach_policy(
            ACCOUNT, ROLE, "fn", "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess"
        )
        issued = sts.issue_role_session(role["Arn"], "my-function", 900)
        key = sts.resolve(issued.access_key_id)
        assert key is not None
        authorizer.authorize(key.principal, "lambda", "ListFunctions", {}, SCOPE)
        with pytest.raises(AccessDeniedException, match="lambda:DeleteFunction"):
            authorizer.authorize(key.principal, "lambda", "DeleteFunction", {"FunctionName": "f"}, SCOPE)
    finally:
        database.dispose()
