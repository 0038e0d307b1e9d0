"""The policy check function URLs (and later event sources) ask: statements against requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.services.permissions import (
    AccessRequest,
    PermissionGrant,
    build_statement,
    policy_allows,
    principal_element,
)
from tests.services.test_functions import SCOPE, Parts, create_params

RESOURCE = "arn:aws:lambda:us-east-1:000000000000:function:f"


def statement(**grant: object) -> dict[str, object]:
    defaults: dict[str, object] = {"statement_id": "s", "action": "lambda:InvokeFunction", "principal": "*"}
    return build_statement(PermissionGrant(**{**defaults, **grant}), RESOURCE)  # type: ignore[arg-type]


def test_public_url_statement_admits_anonymous_callers_of_none_urls_only() -> None:
    public = [statement(action="lambda:InvokeFunctionUrl", function_url_auth_type="NONE")]
    anonymous = AccessRequest("*", "lambda:InvokeFunctionUrl", function_url_auth_type="NONE")
    assert policy_allows(public, anonymous)
    assert not policy_allows(
        public, AccessRequest("*", "lambda:InvokeFunctionUrl", function_url_auth_type="AWS_IAM")
    )
    assert not policy_allows(public, AccessRequest("*", "lambda:InvokeFunctionUrl"))
    assert not policy_allows(
        public, AccessRequest("*", "lambda:InvokeFunction", function_url_auth_type="NONE")
    )
    assert not policy_allows([], anonymous)


def test_principals_accounts_services_and_arns() -> None:
    account = [statement(principal="111111111111")]
    assert policy_allows(account, AccessRequest("111111111111", "lambda:InvokeFunction"))
    assert policy_allows(account, AccessRequest("arn:aws:iam::111111111111:role/r", "lambda:InvokeFunction"))
    assert not policy_allows(account, AccessRequest("222222222222", "lambda:InvokeFunction"))
    assert not policy_allows(account, AccessRequest("*", "lambda:InvokeFunction"))
    role = [statement(principal="arn:aws:iam::111111111111:role/r")]
    assert policy_allows(role, AccessRequest("arn:aws:iam::111111111111:role/r", "lambda:InvokeFunction"))
    assert not policy_allows(
        role, AccessRequest("arn:aws:iam::111111111111:role/other", "lambda:InvokeFunction")
    )
    service = [statement(principal="s3.amazonaws.com", source_arn="arn:aws:s3:::bucket-*")]
    assert policy_allows(
        service,
        AccessRequest("s3.amazonaws.com", "lambda:InvokeFunction", source_arn="arn:aws:s3:::bucket-1"),
    )
    assert not policy_allows(
        service, AccessRequest("s3.amazonaws.com", "lambda:InvokeFunction", source_arn="arn:aws:s3:::other")
    )
    assert not policy_allows(service, AccessRequest("s3.amazonaws.com", "lambda:InvokeFunction"))


def test_actions_wildcards_and_explicit_deny() -> None:
    anything = [statement(action="lambda:*")]
    assert policy_allows(anything, AccessRequest("*", "lambda:InvokeFunctionUrl"))
    denied = [*anything, {**statement(action="lambda:InvokeFunction"), "Effect": "Deny"}]
    assert not policy_allows(denied, AccessRequest("*", "lambda:InvokeFunction"))
    assert policy_allows(denied, AccessRequest("*", "lambda:InvokeFunctionUrl"))
    via_url = [statement(invoked_via_function_url=True)]
    assert policy_allows(via_url, AccessRequest("*", "lambda:InvokeFunction", invoked_via_function_url=True))
    assert not policy_allows(
        via_url, AccessRequest("*", "lambda:InvokeFunction", invoked_via_function_url=False)
    )


def test_principal_forms() -> None:
    assert principal_element("*") == "*"
    assert principal_element("123456789012") == {"AWS": "arn:aws:iam::123456789012:root"}
    assert principal_element("alexa-appkit.amazon.com") == {"Service": "alexa-appkit.amazon.com"}
    for invalid in ("invalid.nonaws.com", "someone", "arn:aws:s3:::bucket"):
        with pytest.raises(InvalidParameterValueException):
            principal_element(invalid)


def test_service_allows_reads_the_qualified_policy(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    try:
        parts.service.create(SCOPE, create_params("f"))
        parts.activator.submit(SCOPE, "f").result(timeout=5)
        permissions = parts.service.permissions
        grant = PermissionGrant("url", "lambda:InvokeFunctionUrl", "*", function_url_auth_type="NONE")
        permissions.add(SCOPE, "f", grant)
        request = AccessRequest("*", "lambda:InvokeFunctionUrl", function_url_auth_type="NONE")
        assert permissions.allows(SCOPE, "f", request)
        assert permissions.allows(SCOPE, "f", request, qualifier="$LATEST")
        assert not permissions.allows(SCOPE, "missing", request)
        parts.service.versions.publish(SCOPE, "f")
        assert not permissions.allows(SCOPE, "f", request, qualifier="1")
        permissions.add(SCOPE, "f", grant, qualifier="1")
        assert permissions.allows(SCOPE, "f:1", request)
        permissions.remove(SCOPE, "f", "url")
        assert not permissions.allows(SCOPE, "f", request)
    finally:
        parts.close()


def test_cached_statements_follow_every_change_to_the_function(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    try:
        parts.service.create(SCOPE, create_params("f"))
        parts.activator.submit(SCOPE, "f").result(timeout=5)
        permissions = parts.service.permissions
        grant = PermissionGrant("url", "lambda:InvokeFunctionUrl", "*", function_url_auth_type="NONE")
        request = AccessRequest("*", "lambda:InvokeFunctionUrl", function_url_auth_type="NONE")
        assert not permissions.allows(SCOPE, "f", request)  # read (and remembered) before the grant
        permissions.add(SCOPE, "f", grant)
        assert permissions.allows(SCOPE, "f", request)
        parts.service.delete(SCOPE, "f")
        assert not permissions.allows(SCOPE, "f", request)
    finally:
        parts.close()
