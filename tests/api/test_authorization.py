"""The authorizer: identity policies from an in-memory PolicyStore, resource policies by ARN, AWS's
AccessDeniedException wording, iam:PassRole and the execution role's trust, and functions' execution
roles (the default policy for a role the store does not know)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdad.api.authorization import (
    Authorizer,
    LambdaResourcePolicies,
    NoIdentities,
    caller_principal,
    policy_of,
    principal_keys,
    role_session,
)
from lambdad.errors import AccessDeniedException, InvalidParameterValueException
from lambdad.models import Caller, Principal, PrincipalKind, Scope
from lambdad.policy import ANONYMOUS, Policy
from lambdad.services.permissions import PermissionGrant
from tests.services.test_functions import SCOPE as SERVICES_SCOPE
from tests.services.test_functions import Parts, create_params
from tests.support import make_zip

A, B = "111111111111", "222222222222"
SCOPE = Scope(A, "eu-west-1")
FN = f"arn:aws:lambda:eu-west-1:{A}:function"
BOB = Principal(A, PrincipalKind.USER, f"arn:aws:iam::{A}:user/bob", "AIDABOB")
ANA = Principal(B, PrincipalKind.USER, f"arn:aws:iam::{B}:user/ana", "AIDAANA")
RUNNER = f"arn:aws:iam::{A}:role/runner"
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class Store:
    """An in-memory PolicyStore: policies by principal ARN (a role session's by its role), trust
    policies by role ARN."""

    def __init__(self) -> None:
        self.policies: dict[str, list[str]] = {}
        self.trust: dict[str, str] = {}

    def identity_policies(self, principal: Principal) -> list[str]:
        return self.policies.get(principal.role_arn or principal.arn, [])

    def trust_policy(self, role_arn: str) -> str | None:
        return self.trust.get(role_arn)


class Resources:
    """Resource policies by ARN."""

    def __init__(self) -> None:
        self.statements: dict[str, list[dict[str, Any]]] = {}

    def resource_policy(self, arn: str) -> Policy | None:
        found = self.statements.get(arn)
        return policy_of(found) if found else None


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def resources() -> Resources:
    return Resources()


@pytest.fixture
def authorizer(store: Store, resources: Resources) -> Authorizer:
    return Authorizer(store, resources)


def refusal(
    authorizer: Authorizer, principal: Principal, operation: str, params: dict[str, Any], **kw: Any
) -> str:
    with pytest.raises(AccessDeniedException) as refused:
        authorizer.authorize(
            principal, "lambda", operation, params, kw.get("scope", SCOPE), kw.get("context")
        )
    assert refused.value.status == 403 and refused.value.code == "AccessDeniedException"
    return refused.value.message


def test_the_root_user_may_do_anything_in_its_account(authorizer: Authorizer) -> None:
    for operation in ("CreateFunction", "DeleteFunction", "ListFunctions", "PutResourcePolicy"):
        authorizer.authorize(Principal.root(A), "lambda", operation, {"FunctionName": "f"}, SCOPE)


def test_a_user_allowed_to_invoke_one_function_is_denied_the_rest(
    authorizer: Authorizer, store: Store
) -> None:
    store.policies[BOB.arn] = [
        document({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"})
    ]
    authorizer.authorize(BOB, "lambda", "Invoke", {"FunctionName": "f"}, SCOPE)
    authorizer.authorize(BOB, "lambda", "InvokeWithResponseStream", {"FunctionName": "f"}, SCOPE)
    assert refusal(authorizer, BOB, "Invoke", {"FunctionName": "g"}) == (
        f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: lambda:InvokeFunction on resource: "
        f"{FN}:g because no identity-based policy allows the lambda:InvokeFunction action"
    )
    assert refusal(authorizer, BOB, "DeleteFunction", {"FunctionName": "f"}) == (
        f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: lambda:DeleteFunction on resource: "
        f"{FN}:f because no identity-based policy allows the lambda:DeleteFunction action"
    )
    assert "lambda:ListFunctions on resource: * because" in refusal(authorizer, BOB, "ListFunctions", {})


def test_an_explicit_deny(authorizer: Authorizer, store: Store) -> None:
    store.policies[BOB.arn] = [
        document({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}),
        document({"Effect": "Deny", "Action": "lambda:Delete*", "Resource": "*"}),
    ]
    authorizer.authorize(BOB, "lambda", "GetFunction", {"FunctionName": "f"}, SCOPE)
    assert refusal(authorizer, BOB, "DeleteFunction", {"FunctionName": "f"}) == (
        f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: lambda:DeleteFunction on resource: "
        f"{FN}:f with an explicit deny in an identity-based policy"
    )


def test_cross_account_invoke_needs_the_function_policy_and_the_callers(
    authorizer: Authorizer, store: Store, resources: Resources
) -> None:
    store.policies[ANA.arn] = [
        document({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})
    ]
    params = {"FunctionName": f"{FN}:f"}
    anas = Scope(B, "eu-west-1")
    assert refusal(authorizer, ANA, "Invoke", params, scope=anas) == (
        f"User: arn:aws:iam::{B}:user/ana is not authorized to perform: lambda:InvokeFunction on resource: "
        f"{FN}:f because no resource-based policy allows the lambda:InvokeFunction action"
    )
    # AddPermission's statement for account B
    resources.statements[f"{FN}:f"] = [
        {
            "Sid": "b",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
            "Action": "lambda:InvokeFunction",
            "Resource": f"{FN}:f",
        }
    ]
    authorizer.authorize(ANA, "lambda", "Invoke", params, anas)
    store.policies[ANA.arn] = []
    assert "because no identity-based policy allows" in refusal(authorizer, ANA, "Invoke", params, scope=anas)


def test_a_resource_policy_deny(authorizer: Authorizer, resources: Resources) -> None:
    resources.statements[f"{FN}:f"] = [
        {"Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction", "Resource": f"{FN}:f"}
    ]
    assert refusal(authorizer, Principal.root(A), "Invoke", {"FunctionName": "f"}).endswith(
        "with an explicit deny in a resource-based policy"
    )


def test_the_transports_context_and_policy_variables(authorizer: Authorizer, store: Store) -> None:
    store.policies[BOB.arn] = [
        document(
            {
                "Effect": "Allow",
                "Action": "lambda:*",
                "Resource": f"arn:aws:lambda:*:{A}:function:${{aws:username}}-*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }
        )
    ]
    inside = {"aws:SourceIp": "10.2.3.4"}
    authorizer.authorize(BOB, "lambda", "GetFunction", {"FunctionName": "bob-api"}, SCOPE, inside)
    refusal(authorizer, BOB, "GetFunction", {"FunctionName": "ana-api"}, context=inside)
    refusal(authorizer, BOB, "GetFunction", {"FunctionName": "bob-api"}, context={"aws:SourceIp": "8.8.8.8"})


def test_creating_a_function_needs_pass_role_and_a_role_lambda_may_assume(
    authorizer: Authorizer, store: Store
) -> None:
    create = {"FunctionName": "f", "Role": RUNNER}
    store.policies[BOB.arn] = [
        document({"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"})
    ]
    assert refusal(authorizer, BOB, "CreateFunction", create) == (
        f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: iam:PassRole on resource: {RUNNER} "
        "because no identity-based policy allows the iam:PassRole action"
    )
    store.policies[BOB.arn].append(
        document(
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": RUNNER,
                "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            }
        )
    )
    with pytest.raises(InvalidParameterValueException) as refused:  # no such role
        authorizer.authorize(BOB, "lambda", "CreateFunction", create, SCOPE)
    assert refused.value.message == "The role defined for the function cannot be assumed by Lambda."
    store.trust[RUNNER] = LAMBDA_TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com")
    with pytest.raises(InvalidParameterValueException):  # a role Lambda is not trusted with
        authorizer.authorize(BOB, "lambda", "CreateFunction", create, SCOPE)
    store.trust[RUNNER] = LAMBDA_TRUST
    authorizer.authorize(BOB, "lambda", "CreateFunction", create, SCOPE)
    # the root user passes any role, but Lambda still checks the trust
    store.trust[RUNNER] = LAMBDA_TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com")
    with pytest.raises(InvalidParameterValueException):
        authorizer.authorize(Principal.root(A), "lambda", "UpdateFunctionConfiguration", create, SCOPE)


def test_roles_are_names_only_without_check_roles(store: Store) -> None:
    Authorizer(store, check_roles=False).authorize(
        Principal.root(A), "lambda", "CreateFunction", {"FunctionName": "f", "Role": RUNNER}, SCOPE
    )


def test_layers_of_another_account_need_their_policy(authorizer: Authorizer, resources: Resources) -> None:
    layer = f"arn:aws:lambda:eu-west-1:{B}:layer:shared:1"
    params = {"FunctionName": "f", "Layers": [layer]}
    checker = Authorizer(Store(), resources, check_roles=False)
    with pytest.raises(AccessDeniedException) as refused:
        checker.authorize(Principal.root(A), "lambda", "CreateFunction", params, SCOPE)
    assert refused.value.message.endswith(
        f"lambda:GetLayerVersion on resource: {layer} because no resource-based policy allows the "
        "lambda:GetLayerVersion action"
    )
    resources.statements[layer] = [  # AddLayerVersionPermission --principal '*'
        {
            "Sid": "all",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:GetLayerVersion",
            "Resource": layer,
        }
    ]
    checker.authorize(Principal.root(A), "lambda", "CreateFunction", params, SCOPE)


def test_assume_role_evaluates_the_trust_policy_as_the_roles_resource_policy(
    authorizer: Authorizer, store: Store
) -> None:
    role = f"arn:aws:iam::{A}:role/admin"
    store.trust[role] = document({"Effect": "Allow", "Principal": {"AWS": A}, "Action": "sts:AssumeRole"})
    with pytest.raises(AccessDeniedException):  # the trust names the account: Bob's policy must allow
        authorizer.authorize(BOB, "sts", "AssumeRole", {"RoleArn": role}, SCOPE)
    store.policies[BOB.arn] = [document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role})]
    authorizer.authorize(BOB, "sts", "AssumeRole", {"RoleArn": role}, SCOPE)
    authorizer.authorize(BOB, "sts", "GetCallerIdentity", {}, SCOPE)  # needs no permission


def test_a_trust_policy_naming_the_user_is_enough_within_the_account(store: Store) -> None:
    role = f"arn:aws:iam::{A}:role/deployer"
    store.trust[role] = document(
        {"Effect": "Allow", "Principal": {"AWS": BOB.arn}, "Action": "sts:AssumeRole"}
    )
    authorizer = Authorizer(store)  # without Lambda's resource policies: the trust is the store's
    authorizer.authorize(BOB, "sts", "AssumeRole", {"RoleArn": role}, SCOPE)
    with pytest.raises(AccessDeniedException) as refused:
        authorizer.authorize(ANA, "sts", "AssumeRole", {"RoleArn": role}, Scope(B, "eu-west-1"))
    assert refused.value.message == (
        f"User: {ANA.arn} is not authorized to perform: sts:AssumeRole on resource: {role} because no "
        "resource-based policy allows the sts:AssumeRole action"
    )


# --- functions' execution roles ------------------------------------------------------------------------

CALLER = Caller(f"arn:aws:lambda:eu-west-1:{A}:function:worker:live", f"arn:aws:iam::{A}:role/a/b/runner")


#: What the API's dispatcher uses when lambdad runs with no identity store.
WITHOUT_IDENTITIES = Authorizer(NoIdentities(), check_roles=False)


def test_the_principal_is_the_role_session_named_after_the_function() -> None:
    principal = caller_principal(CALLER)
    assert principal.arn == f"arn:aws:sts::{A}:assumed-role/runner/worker"
    assert principal.kind is PrincipalKind.ASSUMED_ROLE and principal.role_arn == CALLER.role


@pytest.mark.parametrize(
    "operation", ["Invoke", "InvokeWithResponseStream", "InvokeAsync", "GetAccountSettings"]
)
def test_a_role_the_store_does_not_know_keeps_the_default_policy(operation: str) -> None:
    WITHOUT_IDENTITIES.authorize_caller(CALLER, "lambda", operation, {"FunctionName": "other"}, SCOPE)
    Authorizer(Store()).authorize_caller(CALLER, "lambda", operation, {"FunctionName": "other"}, SCOPE)


def test_a_default_refusal_names_the_role_session_the_action_and_the_resource() -> None:
    with pytest.raises(AccessDeniedException) as refused:
        WITHOUT_IDENTITIES.authorize_caller(
            CALLER, "lambda", "GetFunction", {"FunctionName": "other", "Qualifier": "2"}, SCOPE
        )
    assert refused.value.message == (
        f"User: arn:aws:sts::{A}:assumed-role/runner/worker is not authorized to perform: "
        f"lambda:GetFunction on resource: {FN}:other:2 because no identity-based policy allows the "
        "lambda:GetFunction action"
    )


def test_a_known_role_is_decided_by_its_own_policies(store: Store) -> None:
    store.trust[CALLER.role] = LAMBDA_TRUST
    store.policies[CALLER.role] = [
        document({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"})
    ]
    authorizer = Authorizer(store)
    authorizer.authorize_caller(CALLER, "lambda", "ListFunctions", {}, SCOPE)
    with pytest.raises(AccessDeniedException) as refused:
        authorizer.authorize_caller(CALLER, "lambda", "DeleteFunction", {"FunctionName": "other"}, SCOPE)
    assert refused.value.message == (
        f"User: arn:aws:sts::{A}:assumed-role/runner/worker is not authorized to perform: "
        f"lambda:DeleteFunction on resource: {FN}:other because no identity-based policy allows the "
        "lambda:DeleteFunction action"
    )
    with pytest.raises(AccessDeniedException):  # the default policy no longer applies
        authorizer.authorize_caller(CALLER, "lambda", "Invoke", {"FunctionName": "other"}, SCOPE)


# --- actions that are not operations, and keys the authorizer adds --------------------------------------


def test_a_function_url_with_aws_iam_auth(authorizer: Authorizer, store: Store, resources: Resources) -> None:
    url = {"lambda:FunctionUrlAuthType": "AWS_IAM"}
    store.policies[BOB.arn] = [
        document(
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunctionUrl",
                "Resource": f"{FN}:f",
                "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
            }
        )
    ]
    authorizer.authorize_action(BOB, "lambda:InvokeFunctionUrl", f"{FN}:f", SCOPE, url)
    with pytest.raises(AccessDeniedException):
        authorizer.authorize_action(BOB, "lambda:InvokeFunctionUrl", f"{FN}:g", SCOPE, url)
    with pytest.raises(AccessDeniedException) as anonymous:
        authorizer.authorize_action(ANONYMOUS, "lambda:InvokeFunctionUrl", f"{FN}:f", SCOPE, url)
    assert anonymous.value.message.endswith(
        "because no resource-based policy allows the lambda:InvokeFunctionUrl action"
    )
    resources.statements[f"{FN}:f"] = [  # AWS's statement for an AuthType NONE URL
        {
            "Sid": "FunctionURLAllowPublicAccess",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": f"{FN}:f",
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        }
    ]
    authorizer.authorize_action(
        ANONYMOUS, "lambda:InvokeFunctionUrl", f"{FN}:f", SCOPE, {"lambda:FunctionUrlAuthType": "NONE"}
    )


def test_what_a_role_does_for_a_schedule_or_mapping(authorizer: Authorizer, store: Store) -> None:
    scheduler_role = f"arn:aws:iam::{A}:role/scheduler"
    store.trust[scheduler_role] = LAMBDA_TRUST.replace("lambda", "scheduler")
    store.policies[scheduler_role] = [
        document({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": f"{FN}:target"})
    ]
    session = role_session(scheduler_role, "schedule-1")
    assert session.arn == f"arn:aws:sts::{A}:assumed-role/scheduler/schedule-1"
    authorizer.authorize_action(session, "lambda:InvokeFunction", f"{FN}:target", SCOPE)
    with pytest.raises(AccessDeniedException) as refused:
        authorizer.authorize_action(session, "lambda:InvokeFunction", f"{FN}:other", SCOPE)
    assert refused.value.message.startswith(f"User: {session.arn} is not authorized to perform")


def test_vpc_ids_come_from_the_subnets(store: Store) -> None:
    store.policies[BOB.arn] = [
        document(
            {
                "Effect": "Allow",
                "Action": "lambda:CreateFunction",
                "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"lambda:VpcIds": "vpc-good"}},
            }
        )
    ]
    vpcs = {"subnet-a": "vpc-good", "subnet-b": "vpc-good", "subnet-c": "vpc-bad"}
    authorizer = Authorizer(store, check_roles=False, subnet_vpcs=lambda subnets: [vpcs[s] for s in subnets])
    good = {"FunctionName": "f", "VpcConfig": {"SubnetIds": ["subnet-a", "subnet-b"]}}
    authorizer.authorize(BOB, "lambda", "CreateFunction", good, SCOPE)
    bad = {"FunctionName": "f", "VpcConfig": {"SubnetIds": ["subnet-a", "subnet-c"]}}
    with pytest.raises(AccessDeniedException):
        authorizer.authorize(BOB, "lambda", "CreateFunction", bad, SCOPE)


def test_the_current_time_is_in_every_requests_context(authorizer: Authorizer, store: Store) -> None:
    def until(when: str) -> str:
        return document(
            {
                "Effect": "Allow",
                "Action": "lambda:GetFunction",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:CurrentTime": when}},
            }
        )

    store.policies[BOB.arn] = [until("2999-01-01T00:00:00Z")]
    authorizer.authorize(BOB, "lambda", "GetFunction", {"FunctionName": "f"}, SCOPE)
    store.policies[BOB.arn] = [until("2001-01-01T00:00:00Z")]
    refusal(authorizer, BOB, "GetFunction", {"FunctionName": "f"})


def test_principal_keys() -> None:
    assert principal_keys(BOB) == {
        "aws:PrincipalArn": BOB.arn,
        "aws:PrincipalAccount": A,
        "aws:PrincipalType": "User",
        "aws:userid": "AIDABOB",
        "aws:username": "bob",
    }
    session = principal_keys(caller_principal(CALLER))
    assert session["aws:PrincipalArn"] == CALLER.role and session["aws:PrincipalType"] == "AssumedRole"


# --- Lambda's own resource policies, read through the services -----------------------------------------


def test_functions_and_layers_policies_from_the_store(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    try:
        scope = SERVICES_SCOPE
        parts.service.create(scope, create_params("f"))
        parts.activator.submit(scope, "f").result(timeout=5)
        layer = parts.service.layers.publish(scope, "shared", {"Content": {"ZipFile": make_zip()}})
        policies = LambdaResourcePolicies(parts.service.permissions, parts.service.layers)
        authorizer = Authorizer(Store(), policies, check_roles=False)
        other = Principal.root(B)
        function = scope.function_arn("f")
        with pytest.raises(AccessDeniedException):
            authorizer.authorize(
                other, "lambda", "Invoke", {"FunctionName": function}, Scope(B, scope.region)
            )
        parts.service.permissions.add(scope, "f", PermissionGrant("b", "lambda:InvokeFunction", B))
        authorizer.authorize(other, "lambda", "Invoke", {"FunctionName": function}, Scope(B, scope.region))
        # PutResourcePolicy replaces AddPermission's statements
        deny = document(
            {"Effect": "Deny", "Principal": {"AWS": B}, "Action": "lambda:*", "Resource": function},
        )
        parts.service.permissions.put_document(scope, function, deny)
        with pytest.raises(AccessDeniedException) as denied:
            authorizer.authorize(
                other, "lambda", "Invoke", {"FunctionName": function}, Scope(B, scope.region)
            )
        assert denied.value.message.endswith("with an explicit deny in a resource-based policy")
        layer_version = f"arn:aws:lambda:{scope.region}:{scope.account}:layer:shared:{layer.version}"
        use = {"FunctionName": "g", "Layers": [layer_version]}
        with pytest.raises(AccessDeniedException):
            authorizer.authorize(other, "lambda", "CreateFunction", use, Scope(B, scope.region))
        parts.service.layers.add_permission(
            scope, "shared", layer.version, statement_id="all", action="lambda:GetLayerVersion", principal="*"
        )
        authorizer.authorize(other, "lambda", "CreateFunction", use, Scope(B, scope.region))
        assert policies.resource_policy(scope.function_arn("missing")) is None
    finally:
        parts.close()
