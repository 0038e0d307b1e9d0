"""The IAM API (botocore's ``iam`` model, query protocol): users, access keys, roles, inline and managed
policies and their attachments. Thin: each handler calls ``IdentityService`` in the caller's account.

Not served (yet): groups, login profiles, MFA, instance profiles, tags, policy versions beyond the first.
Members that would restrict a principal and are not enforced (a permissions boundary) are refused rather
than ignored, so that nobody believes a boundary holds when it does not.
"""

from __future__ import annotations

from typing import Any

from lambdad.api.dispatch import ServiceApi
from lambdad.api.operations import Call, OperationTable
from lambdad.errors import InvalidInput, LambdaError, ServiceFailure, Throttling
from lambdad.models import Principal
from lambdad.services.identity import IdentityService
from lambdad.store.identity import ROLE, USER

table = OperationTable()


def identities(call: Call) -> IdentityService:
    if call.services.identities is None:
        raise ServiceFailure("IAM is not served by this lambdad.")
    return call.services.identities


def caller(call: Call) -> Principal:
    """Who signed the request (with authentication off, the default account's root)."""
    return call.principal


def _account(call: Call) -> str:
    return caller(call).account


def _page(member: str, items: list[Any], marker: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {member: items, "IsTruncated": marker is not None}
    if marker is not None:
        answer["Marker"] = marker
    return answer


def _no_boundary(call: Call) -> None:
    if call.params.get("PermissionsBoundary"):
        raise InvalidInput("Permissions boundaries are not supported by lambdad.")


# --- users ---


@table.operation("CreateUser")
def create_user(call: Call) -> dict[str, Any]:
    _no_boundary(call)
    user = identities(call).create_user(_account(call), call.params["UserName"], call.params.get("Path"))
    return {"User": user}


@table.operation("GetUser")
def get_user(call: Call) -> dict[str, Any]:
    name = call.params.get("UserName")
    if name is None:
        return {"User": identities(call).caller_user(caller(call))}
    return {"User": identities(call).get_user(_account(call), name)}


@table.operation("ListUsers")
def list_users(call: Call) -> dict[str, Any]:
    params = call.params
    found, marker = identities(call).list_users(
        _account(call), params.get("PathPrefix"), params.get("Marker"), params.get("MaxItems")
    )
    return _page("Users", found, marker)


@table.operation("DeleteUser")
def delete_user(call: Call) -> dict[str, Any]:
    identities(call).delete_user(_account(call), call.params["UserName"])
    return {}


# --- access keys (without UserName: the caller's own, root's for root) ---


def _key_user(call: Call) -> str | None:
    return identities(call).implicit_user(caller(call), call.params.get("UserName"))


@table.operation("CreateAccessKey")
def create_access_key(call: Call) -> dict[str, Any]:
    return {"AccessKey": identities(call).create_access_key(_account(call), _key_user(call))}


@table.operation("ListAccessKeys")
def list_access_keys(call: Call) -> dict[str, Any]:
    return _page(
        "AccessKeyMetadata", identities(call).list_access_keys(_account(call), _key_user(call)), None
    )


@table.operation("UpdateAccessKey")
def update_access_key(call: Call) -> dict[str, Any]:
    params = call.params
    identities(call).update_access_key(
        _account(call), _key_user(call), params["AccessKeyId"], params["Status"]
    )
    return {}


@table.operation("DeleteAccessKey")
def delete_access_key(call: Call) -> dict[str, Any]:
    identities(call).delete_access_key(_account(call), _key_user(call), call.params["AccessKeyId"])
    return {}


# --- inline policies of users and roles ---


def _owner(kind: str) -> str:
    return "UserName" if kind == USER else "RoleName"


def _inline_operations(kind: str, noun: str) -> None:
    member = _owner(kind)

    @table.operation(f"Put{noun}Policy")
    def put_policy(call: Call) -> dict[str, Any]:
        params = call.params
        identities(call).put_inline_policy(
            _account(call), kind, params[member], params["PolicyName"], params["PolicyDocument"]
        )
        return {}

    @table.operation(f"Get{noun}Policy")
    def get_policy(call: Call) -> dict[str, Any]:
        return identities(call).get_inline_policy(
            _account(call), kind, call.params[member], call.params["PolicyName"]
        )

    @table.operation(f"Delete{noun}Policy")
    def delete_policy(call: Call) -> dict[str, Any]:
        identities(call).delete_inline_policy(
            _account(call), kind, call.params[member], call.params["PolicyName"]
        )
        return {}

    @table.operation(f"List{noun}Policies")
    def list_policies(call: Call) -> dict[str, Any]:
        params = call.params
        names, marker = identities(call).list_inline_policies(
            _account(call), kind, params[member], params.get("Marker"), params.get("MaxItems")
        )
        return _page("PolicyNames", names, marker)

    @table.operation(f"Attach{noun}Policy")
    def attach_policy(call: Call) -> dict[str, Any]:
        identities(call).policies.attach_policy(
            _account(call), kind, call.params[member], call.params["PolicyArn"]
        )
        return {}

    @table.operation(f"Detach{noun}Policy")
    def detach_policy(call: Call) -> dict[str, Any]:
        identities(call).policies.detach_policy(
            _account(call), kind, call.params[member], call.params["PolicyArn"]
        )
        return {}

    @table.operation(f"ListAttached{noun}Policies")
    def list_attached(call: Call) -> dict[str, Any]:
        params = call.params
        found, marker = identities(call).policies.list_attached_policies(
            _account(call),
            kind,
            params[member],
            params.get("PathPrefix"),
            params.get("Marker"),
            params.get("MaxItems"),
        )
        return _page("AttachedPolicies", found, marker)


_inline_operations(USER, "User")
_inline_operations(ROLE, "Role")


# --- managed policies ---


@table.operation("CreatePolicy")
def create_policy(call: Call) -> dict[str, Any]:
    params = call.params
    policy = identities(call).policies.create_policy(
        _account(call),
        params["PolicyName"],
        params["PolicyDocument"],
        params.get("Path"),
        params.get("Description"),
    )
    return {"Policy": policy}


@table.operation("GetPolicy")
def get_policy(call: Call) -> dict[str, Any]:
    return {"Policy": identities(call).policies.get_policy(_account(call), call.params["PolicyArn"])}


@table.operation("DeletePolicy")
def delete_policy(call: Call) -> dict[str, Any]:
    identities(call).policies.delete_policy(_account(call), call.params["PolicyArn"])
    return {}


@table.operation("ListPolicies")
def list_policies(call: Call) -> dict[str, Any]:
    params = call.params
    found, marker = identities(call).policies.list_policies(
        _account(call),
        params.get("Scope"),
        bool(params.get("OnlyAttached")),
        params.get("PathPrefix"),
        params.get("Marker"),
        params.get("MaxItems"),
    )
    return _page("Policies", found, marker)


@table.operation("GetPolicyVersion")
def get_policy_version(call: Call) -> dict[str, Any]:
    version = identities(call).policies.get_policy_version(
        _account(call), call.params["PolicyArn"], call.params["VersionId"]
    )
    return {"PolicyVersion": version}


@table.operation("CreatePolicyVersion")
def create_policy_version(call: Call) -> dict[str, Any]:
    params = call.params
    version = identities(call).policies.create_policy_version(
        _account(call), params["PolicyArn"], params["PolicyDocument"], bool(params.get("SetAsDefault"))
    )
    return {"PolicyVersion": version}


@table.operation("SetDefaultPolicyVersion")
def set_default_policy_version(call: Call) -> dict[str, Any]:
    identities(call).policies.set_default_policy_version(
        _account(call), call.params["PolicyArn"], call.params["VersionId"]
    )
    return {}


@table.operation("DeletePolicyVersion")
def delete_policy_version(call: Call) -> dict[str, Any]:
    identities(call).policies.delete_policy_version(
        _account(call), call.params["PolicyArn"], call.params["VersionId"]
    )
    return {}


@table.operation("ListPolicyVersions")
def list_policy_versions(call: Call) -> dict[str, Any]:
    return _page(
        "Versions",
        identities(call).policies.list_policy_versions(_account(call), call.params["PolicyArn"]),
        None,
    )


# --- roles ---


@table.operation("CreateRole")
def create_role(call: Call) -> dict[str, Any]:
    _no_boundary(call)
    params = call.params
    role = identities(call).create_role(
        _account(call),
        params["RoleName"],
        params["AssumeRolePolicyDocument"],
        params.get("Path"),
        params.get("Description"),
        params.get("MaxSessionDuration"),
    )
    return {"Role": role}


@table.operation("GetRole")
def get_role(call: Call) -> dict[str, Any]:
    return {"Role": identities(call).get_role(_account(call), call.params["RoleName"])}


@table.operation("ListRoles")
def list_roles(call: Call) -> dict[str, Any]:
    params = call.params
    found, marker = identities(call).list_roles(
        _account(call), params.get("PathPrefix"), params.get("Marker"), params.get("MaxItems")
    )
    return _page("Roles", found, marker)


@table.operation("DeleteRole")
def delete_role(call: Call) -> dict[str, Any]:
    identities(call).delete_role(_account(call), call.params["RoleName"])
    return {}


@table.operation("UpdateAssumeRolePolicy")
def update_assume_role_policy(call: Call) -> dict[str, Any]:
    params = call.params
    identities(call).update_assume_role_policy(_account(call), params["RoleName"], params["PolicyDocument"])
    return {}


def _throttled() -> LambdaError:
    return Throttling("Rate exceeded")


def iam_api() -> ServiceApi:
    """IAM's operations, ready for ``AwsApi``."""
    return ServiceApi("iam", table, internal_error=ServiceFailure, throttled=_throttled, fault_in_body=False)


__all__ = ["caller", "iam_api", "identities", "table"]
