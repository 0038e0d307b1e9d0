"""The evaluation logic against AWS's documented examples ("Policy evaluation logic", "Cross-account
policy evaluation logic", "Policy variables") and the rules they state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdad.models import Principal, PrincipalKind
from lambdad.policy import ANONYMOUS, Context, Outcome, PolicyKind, Request, evaluate, parse_policy, trusts

A, B = "111111111111", "222222222222"
CARLOS = Principal(A, PrincipalKind.USER, f"arn:aws:iam::{A}:user/carlossalazar", "AIDACARLOS")
ANA = Principal(B, PrincipalKind.USER, f"arn:aws:iam::{B}:user/ana", "AIDAANA")
SESSION = Principal(
    A,
    PrincipalKind.ASSUMED_ROLE,
    f"arn:aws:sts::{A}:assumed-role/runner/fn",
    "AROARUNNER:fn",
    role_arn=f"arn:aws:iam::{A}:role/service/runner",
)
FUNCTION = f"arn:aws:lambda:us-east-1:{A}:function:f"


def policy(*statements: dict[str, Any], kind: PolicyKind = PolicyKind.IDENTITY) -> Any:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), kind)


def ask(principal: Principal | str, action: str, resource: str, owner: str = A, **context: Any) -> Request:
    return Request(
        principal, action, resource, owner, Context({k.replace("__", ":"): v for k, v in context.items()})
    )


# The "Example identity-based and resource-based policy evaluation" of the IAM User Guide.
CARLOS_POLICY = policy(
    {
        "Sid": "AllowS3ListRead",
        "Effect": "Allow",
        "Action": [
            "s3:GetBucketLocation",
            "s3:GetAccountPublicAccessBlock",
            "s3:ListAccessPoints",
            "s3:ListAllMyBuckets",
        ],
        "Resource": "arn:aws:s3:::*",
    },
    {
        "Sid": "AllowS3Self",
        "Effect": "Allow",
        "Action": "s3:*",
        "Resource": [
            "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/*",
            "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar",
        ],
    },
    {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"},
)
LOGS_BUCKET_POLICY = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{A}:user/carlossalazar"},
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/*",
    },
    kind=PolicyKind.RESOURCE,
)


def test_carlos_may_not_write_to_the_logs_bucket_the_explicit_deny_wins() -> None:
    request = ask(CARLOS, "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/file")
    assert evaluate(request, [CARLOS_POLICY], LOGS_BUCKET_POLICY) is Outcome.EXPLICIT_DENY_IDENTITY


def test_carlos_may_write_to_his_own_bucket() -> None:
    request = ask(CARLOS, "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/file")
    assert evaluate(request, [CARLOS_POLICY]) is Outcome.ALLOWED
    assert (
        evaluate(ask(CARLOS, "s3:ListAllMyBuckets", "arn:aws:s3:::any"), [CARLOS_POLICY]) is Outcome.ALLOWED
    )
    assert (
        evaluate(ask(CARLOS, "s3:PutObject", "arn:aws:s3:::other/f"), [CARLOS_POLICY])
        is Outcome.NO_IDENTITY_ALLOW
    )


def test_default_deny_and_the_root_user_of_the_owner_account() -> None:
    assert evaluate(ask(CARLOS, "lambda:GetFunction", FUNCTION), []) is Outcome.NO_IDENTITY_ALLOW
    assert evaluate(ask(Principal.root(A), "lambda:DeleteFunction", FUNCTION), []) is Outcome.ALLOWED
    # a resource policy's Deny binds the root user too
    deny_all = policy(
        {"Effect": "Deny", "Principal": "*", "Action": "lambda:*", "Resource": "*"}, kind=PolicyKind.RESOURCE
    )
    assert evaluate(ask(Principal.root(A), "lambda:DeleteFunction", FUNCTION), [], deny_all) is (
        Outcome.EXPLICIT_DENY_RESOURCE
    )


INVOKE_ANY = policy({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})


def test_within_an_account_identity_or_resource_policy_is_enough() -> None:
    grant_carlos = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": CARLOS.arn},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        },
        kind=PolicyKind.RESOURCE,
    )
    request = ask(CARLOS, "lambda:InvokeFunction", FUNCTION)
    assert evaluate(request, [INVOKE_ANY]) is Outcome.ALLOWED
    assert evaluate(request, [], grant_carlos) is Outcome.ALLOWED
    # a role named in a resource policy grants its sessions
    grant_role = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": SESSION.role_arn},
            "Action": "lambda:*",
            "Resource": FUNCTION,
        },
        kind=PolicyKind.RESOURCE,
    )
    assert evaluate(ask(SESSION, "lambda:InvokeFunction", FUNCTION), [], grant_role) is Outcome.ALLOWED


def test_within_an_account_a_policy_naming_the_account_delegates_to_identity_policies() -> None:
    grant_account = policy(
        {"Effect": "Allow", "Principal": {"AWS": A}, "Action": "lambda:InvokeFunction", "Resource": FUNCTION},
        kind=PolicyKind.RESOURCE,
    )
    request = ask(CARLOS, "lambda:InvokeFunction", FUNCTION)
    assert evaluate(request, [], grant_account) is Outcome.NO_IDENTITY_ALLOW
    assert evaluate(request, [INVOKE_ANY], grant_account) is Outcome.ALLOWED


def test_across_accounts_both_sides_must_allow() -> None:
    grant_b = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        },
        kind=PolicyKind.RESOURCE,
    )
    request = ask(ANA, "lambda:InvokeFunction", FUNCTION)
    assert evaluate(request, [INVOKE_ANY]) is Outcome.NO_RESOURCE_ALLOW  # no resource policy
    assert evaluate(request, [], grant_b) is Outcome.NO_IDENTITY_ALLOW  # no identity policy
    assert evaluate(request, [INVOKE_ANY], grant_b) is Outcome.ALLOWED
    assert evaluate(ask(Principal.root(B), "lambda:InvokeFunction", FUNCTION), [], grant_b) is Outcome.ALLOWED
    assert (
        evaluate(ask(Principal.root(B), "lambda:InvokeFunction", FUNCTION), []) is Outcome.NO_RESOURCE_ALLOW
    )
    # naming another account grants nothing to this one
    assert (
        evaluate(ask(ANA, "lambda:GetFunction", FUNCTION), [INVOKE_ANY], grant_b) is Outcome.NO_RESOURCE_ALLOW
    )


def test_services_and_anonymous_callers_need_the_resource_policy() -> None:
    from_s3 = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
            "Condition": {
                "StringEquals": {"AWS:SourceAccount": A},
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::uploads"},
            },
        },
        kind=PolicyKind.RESOURCE,
    )
    ok = ask(
        "s3.amazonaws.com",
        "lambda:InvokeFunction",
        FUNCTION,
        aws__SourceAccount=A,
        aws__SourceArn="arn:aws:s3:::uploads",
    )
    assert evaluate(ok, [], from_s3) is Outcome.ALLOWED
    other_bucket = ask(
        "s3.amazonaws.com",
        "lambda:InvokeFunction",
        FUNCTION,
        aws__SourceAccount=A,
        aws__SourceArn="arn:aws:s3:::elsewhere",
    )
    assert evaluate(other_bucket, [], from_s3) is Outcome.NO_RESOURCE_ALLOW
    assert evaluate(ask("sns.amazonaws.com", "lambda:InvokeFunction", FUNCTION), [], from_s3) is (
        Outcome.NO_RESOURCE_ALLOW
    )
    public_url = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": FUNCTION,
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        },
        kind=PolicyKind.RESOURCE,
    )
    url = ask(ANONYMOUS, "lambda:InvokeFunctionUrl", FUNCTION, lambda__FunctionUrlAuthType="NONE")
    assert evaluate(url, [], public_url) is Outcome.ALLOWED
    iam_url = ask(ANONYMOUS, "lambda:InvokeFunctionUrl", FUNCTION, lambda__FunctionUrlAuthType="AWS_IAM")
    assert evaluate(iam_url, [], public_url) is Outcome.NO_RESOURCE_ALLOW


def test_not_action_and_not_resource() -> None:
    everything_but_delete = policy(
        {
            "Effect": "Allow",
            "NotAction": "lambda:Delete*",
            "NotResource": f"arn:aws:lambda:*:{A}:function:prod-*",
        }
    )
    assert evaluate(ask(CARLOS, "lambda:GetFunction", FUNCTION), [everything_but_delete]) is Outcome.ALLOWED
    assert evaluate(ask(CARLOS, "lambda:DeleteFunction", FUNCTION), [everything_but_delete]) is (
        Outcome.NO_IDENTITY_ALLOW
    )
    prod = f"arn:aws:lambda:us-east-1:{A}:function:prod-api"
    assert (
        evaluate(ask(CARLOS, "lambda:GetFunction", prod), [everything_but_delete])
        is Outcome.NO_IDENTITY_ALLOW
    )


def test_actions_match_case_insensitively_and_resources_case_sensitively() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "LAMBDA:get?unction*",
        "Resource": f"arn:aws:lambda:*:{A}:function:F*",
    }
    assert (
        evaluate(
            ask(CARLOS, "lambda:GetFunctionConfiguration", f"arn:aws:lambda:us-east-1:{A}:function:Foo"),
            [policy(statement)],
        )
        is Outcome.ALLOWED
    )
    assert (
        evaluate(
            ask(CARLOS, "lambda:GetFunction", f"arn:aws:lambda:us-east-1:{A}:function:foo"),
            [policy(statement)],
        )
        is Outcome.NO_IDENTITY_ALLOW
    )


def test_a_listing_on_star_needs_a_star_resource() -> None:
    assert evaluate(
        ask(CARLOS, "lambda:ListFunctions", "*"),
        [policy({"Effect": "Allow", "Action": "lambda:*", "Resource": f"arn:aws:lambda:*:{A}:function:*"})],
    ) is (Outcome.NO_IDENTITY_ALLOW)
    assert (
        evaluate(
            ask(CARLOS, "lambda:ListFunctions", "*"),
            [policy({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"})],
        )
        is Outcome.ALLOWED
    )


def test_policy_variables_in_resources_follow_the_version() -> None:
    own = {
        "Effect": "Allow",
        "Action": "lambda:*",
        "Resource": f"arn:aws:lambda:*:{A}:function:${{aws:username}}-*",
    }
    mine = ask(
        CARLOS,
        "lambda:GetFunction",
        f"arn:aws:lambda:us-east-1:{A}:function:carlossalazar-api",
        aws__username="carlossalazar",
    )
    theirs = ask(
        CARLOS,
        "lambda:GetFunction",
        f"arn:aws:lambda:us-east-1:{A}:function:ana-api",
        aws__username="carlossalazar",
    )
    assert evaluate(mine, [policy(own)]) is Outcome.ALLOWED
    assert evaluate(theirs, [policy(own)]) is Outcome.NO_IDENTITY_ALLOW
    old = parse_policy(json.dumps({"Version": "2008-10-17", "Statement": [own]}))
    assert evaluate(mine, [old]) is Outcome.NO_IDENTITY_ALLOW  # literal text under the old version


def test_conditions_and_across_keys_and_operators() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "lambda:*",
        "Resource": "*",
        "Condition": {
            "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
            "Bool": {"aws:SecureTransport": "true"},
        },
    }
    both = ask(CARLOS, "lambda:GetFunction", FUNCTION, aws__SourceIp="203.0.113.9", aws__SecureTransport=True)
    one = ask(CARLOS, "lambda:GetFunction", FUNCTION, aws__SourceIp="203.0.113.9", aws__SecureTransport=False)
    assert evaluate(both, [policy(statement)]) is Outcome.ALLOWED
    assert evaluate(one, [policy(statement)]) is Outcome.NO_IDENTITY_ALLOW


def test_deny_unless_from_a_network() -> None:
    deny_outside = policy(
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    )
    assert evaluate(
        ask(CARLOS, "lambda:GetFunction", FUNCTION, aws__SourceIp="10.1.1.1"), [deny_outside]
    ) is (Outcome.ALLOWED)
    assert evaluate(ask(CARLOS, "lambda:GetFunction", FUNCTION, aws__SourceIp="8.8.8.8"), [deny_outside]) is (
        Outcome.EXPLICIT_DENY_IDENTITY
    )


def test_not_principal_excludes_exactly_whom_it_lists() -> None:
    deny_others = policy(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [CARLOS.arn, f"arn:aws:iam::{A}:root"]},
            "Action": "lambda:*",
            "Resource": FUNCTION,
        },
        kind=PolicyKind.RESOURCE,
    )
    someone = Principal(A, PrincipalKind.USER, f"arn:aws:iam::{A}:user/mallory", "AIDAM")
    everything = policy({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"})
    assert evaluate(ask(CARLOS, "lambda:GetFunction", FUNCTION), [everything], deny_others) is Outcome.ALLOWED
    assert evaluate(ask(someone, "lambda:GetFunction", FUNCTION), [everything], deny_others) is (
        Outcome.EXPLICIT_DENY_RESOURCE
    )


LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("lambda.amazonaws.com", True),
        ("scheduler.amazonaws.com", False),
        (CARLOS, False),
    ],
)
def test_trust_policies(principal: Principal | str, expected: bool) -> None:
    assert trusts(LAMBDA_TRUST, principal, f"arn:aws:iam::{A}:role/runner") is expected


def test_a_trust_policy_naming_an_account_or_a_user() -> None:
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": [B, CARLOS.arn]}, "Action": "sts:AssumeRole"},
                {"Effect": "Deny", "Principal": {"AWS": ANA.arn}, "Action": "sts:AssumeRole"},
            ],
        }
    )
    role = f"arn:aws:iam::{A}:role/shared"
    assert trusts(trust, CARLOS, role)
    assert trusts(trust, Principal.root(B), role)
    assert not trusts(trust, ANA, role)  # the explicit deny
    assert not trusts(trust, Principal.root(A), role)
