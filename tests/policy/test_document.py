"""The policy grammar: what parses, and IAM's MalformedPolicyDocument words for the common mistakes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdad.policy import MalformedPolicy, PolicyKind, parse_policy
from lambdad.policy.document import Effect, Principals, from_statements, parse_operator


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version:
        document["Version"] = version
    return json.dumps(document)


ALLOW = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}


def test_a_statement_may_be_one_object_and_elements_strings_or_lists() -> None:
    policy = parse_policy(json.dumps({"Version": "2012-10-17", "Id": "p", "Statement": ALLOW}))
    assert policy.version == "2012-10-17" and policy.id == "p"
    (statement,) = policy.statements
    assert statement.effect is Effect.ALLOW
    assert statement.actions == ("lambda:InvokeFunction",) and statement.resources == ("*",)
    assert statement.not_actions is None and statement.principal is None


def test_without_a_version_policy_variables_are_text() -> None:
    assert parse_policy(doc(ALLOW, version=None)).version == "2008-10-17"


def test_principals_of_every_kind() -> None:
    statement = {
        **ALLOW,
        "Principal": {
            "AWS": ["123456789012", "arn:aws:iam::123456789012:role/r", "*"],
            "Service": "s3.amazonaws.com",
            "Federated": "cognito-identity.amazonaws.com",
        },
    }
    (parsed,) = parse_policy(doc(statement), PolicyKind.RESOURCE).statements
    assert parsed.principal == Principals(
        anyone=True,
        aws=("123456789012", "arn:aws:iam::123456789012:role/r"),
        service=("s3.amazonaws.com",),
        federated=("cognito-identity.amazonaws.com",),
    )
    (star,) = parse_policy(doc({**ALLOW, "Principal": "*"}), PolicyKind.RESOURCE).statements
    assert star.principal == Principals(anyone=True)


def test_conditions_keep_each_key_and_values_as_strings() -> None:
    statement = {
        **ALLOW,
        "Condition": {"Bool": {"aws:SecureTransport": True}, "NumericLessThan": {"s3:max-keys": [10, "20"]}},
    }
    (parsed,) = parse_policy(doc(statement)).statements
    assert [(c.operator, c.key, c.values) for c in parsed.conditions] == [
        ("Bool", "aws:SecureTransport", ("true",)),
        ("NumericLessThan", "s3:max-keys", ("10", "20")),
    ]


@pytest.mark.parametrize(
    ("document", "kind", "message"),
    [
        ("{not json", PolicyKind.IDENTITY, "Syntax errors in policy."),
        (json.dumps({"Version": "2012-10-17"}), PolicyKind.IDENTITY, "Syntax errors in policy."),
        (json.dumps({"Statement": [ALLOW], "Extra": 1}), PolicyKind.IDENTITY, "Syntax errors in policy."),
        (doc({**ALLOW, "Actions": "x:y"}), PolicyKind.IDENTITY, "Syntax errors in policy."),
        (doc({**ALLOW, "NotAction": "x:y"}), PolicyKind.IDENTITY, "Syntax errors in policy."),
        (
            doc(ALLOW, version="2010-01-01"),
            PolicyKind.IDENTITY,
            "Policy document must be version 2012-10-17 or greater.",
        ),
        (
            doc({"Effect": "Allow", "Resource": "*"}),
            PolicyKind.IDENTITY,
            "Policy statement must contain actions.",
        ),
        (
            doc({"Effect": "Allow", "Action": []}),
            PolicyKind.IDENTITY,
            "Policy statement must contain actions.",
        ),
        (
            doc({"Effect": "Allow", "Action": "s3:x"}),
            PolicyKind.IDENTITY,
            "Policy statement must contain resources.",
        ),
        (doc({"Action": "s3:x", "Resource": "*"}), PolicyKind.IDENTITY, "Missing required field Effect"),
        (doc({**ALLOW, "Effect": "allow"}), PolicyKind.IDENTITY, "Invalid effect: allow"),
        (
            doc({**ALLOW, "Sid": "a"}, {**ALLOW, "Sid": "a"}),
            PolicyKind.IDENTITY,
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        (
            doc({**ALLOW, "Action": "invoke"}),
            PolicyKind.IDENTITY,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            doc({**ALLOW, "Action": "lambda:a:b"}),
            PolicyKind.IDENTITY,
            "Actions/Condition can contain only one colon.",
        ),
        (
            doc({**ALLOW, "Principal": "*"}),
            PolicyKind.IDENTITY,
            "Policy document should not specify a principal.",
        ),
        (doc(ALLOW), PolicyKind.RESOURCE, "Missing required field Principal"),
        (
            doc({**ALLOW, "Principal": {"AWS": "bob"}}),
            PolicyKind.RESOURCE,
            'Invalid principal in policy: "AWS":"bob"',
        ),
        (  # no wildcards inside a principal's ARN, only "*" alone
            doc({**ALLOW, "Principal": {"AWS": "arn:aws:iam::123456789012:user/*"}}),
            PolicyKind.RESOURCE,
            'Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*"',
        ),
        (
            doc({**ALLOW, "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
            PolicyKind.TRUST,
            "Has prohibited field Resource",
        ),
        (
            doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "s3:GetObject",
                }
            ),
            PolicyKind.TRUST,
            "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and "
            "sts:AssumeRoleWithWebIdentity",
        ),
        (
            doc({**ALLOW, "Condition": {"StringEqualz": {"a:b": "c"}}}),
            PolicyKind.IDENTITY,
            "Invalid Condition type : StringEqualz",
        ),
        (
            doc({**ALLOW, "Condition": {"ForSomeValues:StringEquals": {"a:b": "c"}}}),
            PolicyKind.IDENTITY,
            "Invalid Condition type : ForSomeValues:StringEquals",
        ),
    ],
)
def test_iam_words_for_malformed_documents(document: str, kind: PolicyKind, message: str) -> None:
    with pytest.raises(MalformedPolicy) as malformed:
        parse_policy(document, kind)
    assert malformed.value.message == message


def test_a_trust_policy_names_principals_and_assume_role_only() -> None:
    trust = doc(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    (statement,) = parse_policy(trust, PolicyKind.TRUST).statements
    assert statement.resources is None and statement.principal is not None


def test_operators_taken_apart() -> None:
    operator = parse_operator("ForAllValues:StringLikeIfExists")
    assert (operator.base, operator.set_operator, operator.if_exists) == ("StringLike", "ForAllValues", True)
    assert parse_operator("Null").base == "Null"
    with pytest.raises(MalformedPolicy):
        parse_operator("NullIfExists")


def test_stored_statements_that_no_longer_parse_are_left_out() -> None:
    good = {
        "Sid": "ok",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Resource": "*",
    }
    bad = {
        "Sid": "bad",
        "Effect": "Deny",
        "Principal": {"AWS": "nobody"},
        "Action": "lambda:*",
        "Resource": "*",
    }
    policy = from_statements([good, bad])
    assert [statement.sid for statement in policy.statements] == ["ok"]
    assert policy.version == "2012-10-17"
