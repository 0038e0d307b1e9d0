"""Who may call what: the one place a request's caller is checked before its operation runs.

Requests from lambdad's own port come from the operator's clients and are not checked (lambdad does not
verify signatures yet). Requests a function sends to ``AWS_ENDPOINT_URL_LAMBDA`` carry a ``Caller``
bound to the execution environment they arrived on, and act with the function's execution role.
Until lambdad evaluates IAM policies (issue 12 replaces ``DEFAULT_ROLE_POLICY`` with the role's own),
every role has the same documented policy: the function may invoke functions, as most Lambda
execution roles allow, and read the account's limits; nothing else. Every other read names or
describes other functions (their environment variables, code, policies, tags, URLs), and every write
could take them over or widen a sandbox, so they are refused as AWS refuses an action no policy allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdad.errors import AccessDeniedException
from lambdad.models import Caller, Scope, layer_arn, parse_function_ref

#: The IAM actions of the default execution role policy (Invoke and InvokeWithResponseStream are both
#: ``lambda:InvokeFunction`` in IAM).
DEFAULT_ROLE_POLICY = frozenset({"lambda:InvokeFunction", "lambda:InvokeAsync", "lambda:GetAccountSettings"})

# Operations whose IAM action has another name than the operation (the rest share it).
_ACTIONS = {
    "Invoke": "InvokeFunction",
    "InvokeWithResponseStream": "InvokeFunction",
    "GetLayerVersionByArn": "GetLayerVersion",
}


def action_of(service: str, operation: str) -> str:
    """The IAM action an operation is authorised as: ``lambda:InvokeFunction`` for Invoke."""
    return f"{service}:{_ACTIONS.get(operation, operation)}"


def authorize(caller: Caller, service: str, operation: str, params: Mapping[str, Any], scope: Scope) -> None:
    """Refuse (403 AccessDeniedException, AWS's wording) what ``caller``'s role may not do."""
    action = action_of(service, operation)
    if action in DEFAULT_ROLE_POLICY:
        return
    resource = resource_of(service, operation, params, scope)
    raise AccessDeniedException(
        f"User: {caller.principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def resource_of(service: str, operation: str, params: Mapping[str, Any], scope: Scope) -> str:
    """The ARN AWS names as the resource of a request (``*`` for listings and account-wide calls)."""
    for member in ("Resource", "ResourceArn", "Arn"):
        if isinstance(params.get(member), str):
            return str(params[member])
    if service == "scheduler":
        return _schedule_arn(operation, params, scope)
    name = params.get("FunctionName")
    if isinstance(name, str):
        ref = parse_function_ref(name)
        if ref is None:
            return "*"
        where = Scope(ref.account or scope.account, ref.region or scope.region)
        return where.function_arn(ref.name, params.get("Qualifier") or ref.qualifier)
    layer = params.get("LayerName")
    if isinstance(layer, str):
        if layer.startswith("arn:"):
            return layer
        return layer_arn(scope.region, scope.account, layer, params.get("VersionNumber"))
    if isinstance(params.get("UUID"), str):
        return f"arn:aws:lambda:{scope.region}:{scope.account}:event-source-mapping:{params['UUID']}"
    return "*"


def _schedule_arn(operation: str, params: Mapping[str, Any], scope: Scope) -> str:
    name = params.get("Name")
    if not isinstance(name, str):
        return "*"
    prefix = f"arn:aws:scheduler:{scope.region}:{scope.account}"
    if operation.endswith("ScheduleGroup"):
        return f"{prefix}:schedule-group/{name}"
    return f"{prefix}:schedule/{params.get('GroupName') or 'default'}/{name}"
