"""The IAM action, resource and condition keys of each operation lambdad serves, as AWS's Service
Authorization Reference gives them ("Actions, resources, and condition keys for AWS Lambda", "... for
Amazon EventBridge Scheduler", IAM, STS, Signer, EC2).

Most operations are authorised as the action of their own name; ``_RENAMED`` lists the others. The
resource is derived from the parameters: a function's ARN (with the qualifier a request names), a layer
or layer version, an event source mapping, a code signing config, a capacity provider, a schedule, an
IAM user or role... or ``*`` for listings, creations of unnamed things and account-wide calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdad.models import Scope, layer_arn, parse_function_ref, parse_layer_arn


@dataclass(frozen=True)
class Access:
    """What one request asks: ``action`` on ``resource``, with the operation's own condition keys.
    ``action`` None: the operation needs no permission (STS GetCallerIdentity)."""

    action: str | None
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def resource_account(self) -> str | None:
        """The account in the resource's ARN (None for ``*`` and ARNs without one)."""
        parts = self.resource.split(":")
        return parts[4] if len(parts) > 5 and parts[4] else None


_RENAMED = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    ("lambda", "GetLayerVersionByArn"): "GetLayerVersion",
}
# No permission needed: anyone signed in may ask who they are.
_UNAUTHORISED = {("sts", "GetCallerIdentity")}

# Lambda operations AWS authorises on ``*`` although they carry a name.
_LAMBDA_ON_ANY = {
    "CreateEventSourceMapping",
    "ListEventSourceMappings",
    "ListLayerVersions",
    "ListFunctions",
    "ListLayers",
    "ListCodeSigningConfigs",
    "CreateCodeSigningConfig",
    "ListCapacityProviders",
    "GetAccountSettings",
    "SendDurableExecutionCallbackSuccess",
    "SendDurableExecutionCallbackFailure",
    "SendDurableExecutionCallbackHeartbeat",
}
# Operations whose resource is the unqualified function whatever they name (the alias is a parameter).
_UNQUALIFIED = {"CreateAlias", "DeleteAlias", "GetAlias", "UpdateAlias", "ListAliases"}


def access_of(service: str, operation: str, params: Mapping[str, Any], scope: Scope) -> Access:
    """The action, resource and condition keys of one request."""
    if (service, operation) in _UNAUTHORISED:
        return Access(None, "*")
    action = f"{service}:{_RENAMED.get((service, operation), operation)}"
    resource = {"lambda": _lambda_resource, "scheduler": _scheduler_resource}.get(service, _other_resource)(
        operation, params, scope, service
    )
    return Access(action, resource, _keys(service, operation, params, scope))


# Lambda operations on an existing function another account may be granted (AWS: "any API action that
# operates on an existing function"), save those AWS keeps to the owner whatever the policy says.
_OWNER_ONLY = {"CreateFunction", "AddPermission", "RemovePermission", "UpdateFunctionConfiguration"}
# Layer operations another account may be granted (AddLayerVersionPermission's lambda:GetLayerVersion).
_SHARED_LAYER_OPERATIONS = {"GetLayerVersion", "GetLayerVersionByArn"}


def owner_scope(service: str, operation: str, params: Mapping[str, Any], scope: Scope) -> Scope:
    """The account whose records a request acts on: the caller's (``scope``), or the account a full ARN
    names when the operation is one another account may be granted (invoking, reading a function; a
    layer version). Whether the caller may is the authorizer's to decide (both sides' policies)."""
    if service != "lambda":
        return scope
    named: str | None = None
    if operation in _SHARED_LAYER_OPERATIONS:
        arn = params.get("Arn") if operation == "GetLayerVersionByArn" else params.get("LayerName")
        layer = parse_layer_arn(arn) if isinstance(arn, str) else None
        named = layer.account if layer is not None and layer.region == scope.region else None
    elif operation not in _OWNER_ONLY and operation not in _LAMBDA_ON_ANY:
        name = params.get("FunctionName")
        ref = parse_function_ref(name) if isinstance(name, str) else None
        named = ref.account if ref is not None and ref.region in (None, scope.region) else None
    return Scope(named, scope.region) if named and named != scope.account else scope


def passed_roles(service: str, operation: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The roles a request hands to a service, as (role ARN, the service it is passed to): the caller
    needs ``iam:PassRole`` on each (with ``iam:PassedToService``)."""
    if service == "lambda" and operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        role = params.get("Role")
        return [(role, "lambda.amazonaws.com")] if isinstance(role, str) else []
    if service == "scheduler" and operation in ("CreateSchedule", "UpdateSchedule"):
        target = params.get("Target")
        role = target.get("RoleArn") if isinstance(target, dict) else None
        return [(role, "scheduler.amazonaws.com")] if isinstance(role, str) else []
    return []


def layers_used(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """The layer versions a function configuration names: the caller needs ``lambda:GetLayerVersion``
    on each (the layer's own policy grants it across accounts)."""
    if service == "lambda" and operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        return _strings(params.get("Layers"))
    return []


# --- resources ------------------------------------------------------------------------------------------


def function_resource(name: str, qualifier: str | None, scope: Scope, *, keep_qualifier: bool = True) -> str:
    """The ARN a FunctionName (name, partial or full ARN) and Qualifier name; ``*`` if neither parses."""
    ref = parse_function_ref(name)
    if ref is None:
        return "*"
    where = Scope(ref.account or scope.account, ref.region or scope.region)
    return where.function_arn(ref.name, (qualifier or ref.qualifier) if keep_qualifier else None)


def _lambda_resource(operation: str, params: Mapping[str, Any], scope: Scope, _: str) -> str:
    if operation in _LAMBDA_ON_ANY:
        return "*"
    for member in ("Resource", "ResourceArn", "Arn", "DurableExecutionArn", "CodeSigningConfigArn"):
        if isinstance(params.get(member), str) and not isinstance(params.get("FunctionName"), str):
            return str(params[member])
    if isinstance(params.get("UUID"), str):
        return f"arn:aws:lambda:{scope.region}:{scope.account}:event-source-mapping:{params['UUID']}"
    name = params.get("FunctionName")
    if isinstance(name, str):
        if operation in _UNQUALIFIED:
            return function_resource(name, None, scope, keep_qualifier=False)
        return function_resource(name, params.get("Qualifier"), scope)
    layer = params.get("LayerName")
    if isinstance(layer, str):
        version = params.get("VersionNumber")
        ref = parse_layer_arn(layer) if layer.startswith("arn:") else None
        if ref is not None:
            return layer_arn(
                ref.region, ref.account, ref.name, version if version is not None else ref.version
            )
        return layer_arn(scope.region, scope.account, layer, version)
    if isinstance(params.get("CapacityProviderName"), str):
        provider = params["CapacityProviderName"]
        return f"arn:aws:lambda:{scope.region}:{scope.account}:capacity-provider:{provider}"
    return "*"


def _scheduler_resource(operation: str, params: Mapping[str, Any], scope: Scope, _: str) -> str:
    if isinstance(params.get("ResourceArn"), str):
        return str(params["ResourceArn"])
    name = params.get("Name")
    if not isinstance(name, str):
        return "*"
    prefix = f"arn:aws:scheduler:{scope.region}:{scope.account}"
    if operation.endswith("ScheduleGroup"):
        return f"{prefix}:schedule-group/{name}"
    return f"{prefix}:schedule/{params.get('GroupName') or 'default'}/{name}"


def _iam_path(params: Mapping[str, Any]) -> str:
    path = params.get("Path")
    return path if isinstance(path, str) and path.startswith("/") and path.endswith("/") else "/"


# Other services: the parameter that names the resource, and how its ARN is made.
_NAMED_BY: dict[str, list[tuple[str, Callable[[str, Mapping[str, Any], Scope], str]]]] = {
    "iam": [
        ("PolicyArn", lambda value, _, __: value),
        ("RoleName", lambda value, p, s: f"arn:aws:iam::{s.account}:role{_iam_path(p)}{value}"),
        ("UserName", lambda value, p, s: f"arn:aws:iam::{s.account}:user{_iam_path(p)}{value}"),
        ("GroupName", lambda value, p, s: f"arn:aws:iam::{s.account}:group{_iam_path(p)}{value}"),
    ],
    "sts": [("RoleArn", lambda value, _, __: value)],
    "signer": [
        (
            "profileName",
            lambda value, _, s: f"arn:aws:signer:{s.region}:{s.account}:/signing-profiles/{value}",
        ),
        ("jobId", lambda value, _, s: f"arn:aws:signer:{s.region}:{s.account}:/signing-jobs/{value}"),
    ],
    "ec2": [
        ("VpcId", lambda value, _, s: f"arn:aws:ec2:{s.region}:{s.account}:vpc/{value}"),
        ("SubnetId", lambda value, _, s: f"arn:aws:ec2:{s.region}:{s.account}:subnet/{value}"),
        ("GroupId", lambda value, _, s: f"arn:aws:ec2:{s.region}:{s.account}:security-group/{value}"),
    ],
}


#: IAM's listings of one kind of entity, decided on the path they list (AWS: "... iam:ListUsers on
#: resource: arn:aws:iam::123456789012:user/").
_IAM_LISTINGS = {"ListUsers": "user", "ListRoles": "role", "ListGroups": "group", "ListPolicies": "policy"}


def _other_resource(operation: str, params: Mapping[str, Any], scope: Scope, service: str) -> str:
    if service == "iam" and operation in _IAM_LISTINGS:
        prefix = params.get("PathPrefix")
        path = prefix if isinstance(prefix, str) and prefix.startswith("/") else "/"
        return f"arn:aws:iam::{scope.account}:{_IAM_LISTINGS[operation]}{path}"
    if operation.startswith("List") or operation.startswith("Describe"):
        return "*"
    for member in ("ResourceArn", "resourceArn"):
        if isinstance(params.get(member), str):
            return str(params[member])
    for member, arn in _NAMED_BY.get(service, []):
        value = params.get(member)
        if isinstance(value, str):
            return arn(value, params, scope)
    return "*"


# --- condition keys -------------------------------------------------------------------------------------


def _keys(service: str, operation: str, params: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """The service-specific condition keys a request carries (the global ones come from the caller).
    Parameters are not validated yet (authorisation comes first, as on AWS): a value of the wrong type
    adds no key, and validation answers it after."""
    keys: dict[str, Any] = {}
    if service != "lambda":
        return keys
    tags = params.get("Tags")
    if operation in ("CreateFunction", "TagResource", "CreateEventSourceMapping") and isinstance(tags, dict):
        keys["aws:TagKeys"] = tuple(str(key) for key in tags)
        keys.update({f"aws:RequestTag/{key}": value for key, value in tags.items() if isinstance(value, str)})
    if operation in ("CreateEventSourceMapping", "UpdateEventSourceMapping") and isinstance(
        params.get("FunctionName"), str
    ):
        keys["lambda:FunctionArn"] = function_resource(params["FunctionName"], None, scope)
    if operation in ("CreateFunctionUrlConfig", "UpdateFunctionUrlConfig"):
        keys["lambda:FunctionUrlAuthType"] = _string(params.get("AuthType"))
    if operation == "AddPermission":
        keys["lambda:Principal"] = _string(params.get("Principal"))
        keys["lambda:FunctionUrlAuthType"] = _string(params.get("FunctionUrlAuthType"))
    if operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        if isinstance(params.get("Layers"), list):
            keys["lambda:Layer"] = tuple(_strings(params["Layers"]))
        vpc = params.get("VpcConfig")
        if isinstance(vpc, dict):
            for member, key in (
                ("SubnetIds", "lambda:SubnetIds"),
                ("SecurityGroupIds", "lambda:SecurityGroupIds"),
            ):
                if isinstance(vpc.get(member), list):
                    keys[key] = tuple(_strings(vpc[member]))
    if operation in ("CreateFunction", "PutFunctionCodeSigningConfig"):
        keys["lambda:CodeSigningConfigArn"] = _string(params.get("CodeSigningConfigArn"))
    return {key: value for key, value in keys.items() if value is not None}


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
