"""Who may call what: every request's principal is checked, after parsing and before validation, the way
AWS checks it, against the caller's identity-based policies and the resource's own policy.

``Authorizer.authorize`` takes the request's action, resource and condition keys from the operation
table (``lambdad.policy.actions``), the caller's identity policies from the ``PolicyStore`` (the IAM
store implements it), the resource policy of a function (AddPermission statements or a
PutResourcePolicy document) or layer version from ``ResourcePolicies``, and lets
``lambdad.policy.evaluate`` decide. A denial is AWS's 403 AccessDeniedException ("User: ARN is not
authorized to perform: ACTION on resource: RES because no identity-based policy allows the ACTION
action"). Handing a role to a service (CreateFunction's ``Role``, a schedule's ``Target.RoleArn``) needs
``iam:PassRole`` on it, and Lambda refuses a role that does not exist or does not trust
``lambda.amazonaws.com``.

Requests a function sends to ``AWS_ENDPOINT_URL_LAMBDA`` carry a ``Caller`` bound to their execution
environment and act as a session of the function's execution role (``authorize_caller``). A role the
identity store does not know keeps lambdad's earlier default (``DEFAULT_ROLE_POLICY``: invoke
functions, read the account's limits), so functions created before identities existed keep working.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from lambdad.errors import AccessDeniedException, InvalidParameterValueException, ResourceNotFoundException
from lambdad.models import Caller, Principal, PrincipalKind, Scope, parse_function_ref, parse_layer_arn
from lambdad.policy import (
    Context,
    MalformedPolicy,
    Outcome,
    Policy,
    PolicyKind,
    Request,
    evaluate,
    parse_policy,
)
from lambdad.policy.actions import access_of, layers_used, passed_roles
from lambdad.policy.document import from_statements
from lambdad.policy.evaluation import trusts

log = logging.getLogger(__name__)

#: What a function's execution role may do when the identity store does not know the role (Invoke and
#: InvokeWithResponseStream are both ``lambda:InvokeFunction`` in IAM).
DEFAULT_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction", "lambda:InvokeAsync", "lambda:GetAccountSettings"],
                "Resource": "*",
            }
        ],
    }
)
_DEFAULT_ROLE = parse_policy(DEFAULT_ROLE_POLICY)
#: The Role member's pattern in Lambda's model.
_ROLE_ARN = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
ROLE_CANNOT_BE_ASSUMED = "The role defined for the function cannot be assumed by Lambda."


class PolicyStore(Protocol):
    """The identity store's side of authorisation (the IAM store implements it)."""

    def identity_policies(self, principal: Principal) -> list[str]:
        """The JSON documents of the policies that apply to ``principal`` (a user's inline, attached
        and group policies; a role session's role's)."""
        ...

    def trust_policy(self, role_arn: str) -> str | None:
        """A role's trust policy document; None: no such role."""
        ...


class ResourcePolicies(Protocol):
    """The resource-based policy of a resource, by ARN."""

    def resource_policy(self, arn: str) -> Policy | None: ...


class NoIdentities:
    """A ``PolicyStore`` with no users or roles: only root users act, and execution roles keep the
    default policy (lambdad without an identity store)."""

    def identity_policies(self, principal: Principal) -> list[str]:
        return []

    def trust_policy(self, role_arn: str) -> str | None:
        return None


#: IAM operations that act on the calling user when no UserName is given.
_OWN_USER = frozenset({"GetUser", "ListAccessKeys", "CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"})


class Authorizer:
    """Decides each request as AWS does; raises AWS's errors for a request it refuses.

    ``check_roles``: refuse CreateFunction/UpdateFunctionConfiguration with a role the identity store
    does not have or that does not trust Lambda (off while lambdad runs without identities, where every
    role is a name only).
    """

    def __init__(
        self,
        store: PolicyStore,
        resources: ResourcePolicies | None = None,
        *,
        check_roles: bool = True,
        subnet_vpcs: Callable[[Sequence[str]], Sequence[str]] | None = None,
    ) -> None:
        self._store = store
        self._resources = resources
        self._check_roles = check_roles
        # The VPCs of subnets (the EC2 store's), for the lambda:VpcIds condition key.
        self._subnet_vpcs = subnet_vpcs

    def authorize(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        scope: Scope,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Refuse (403 AccessDeniedException, AWS's wording) what ``principal`` may not do; ``context``
        holds what the transport knows (aws:SourceIp, aws:SecureTransport, aws:CurrentTime...)."""
        self._authorize(principal, service, operation, params, scope, context, default_policy=False)

    def authorize_action(
        self,
        principal: Principal | str,
        action: str,
        resource: str,
        scope: Scope,
        context: Mapping[str, Any] | None = None,
        *,
        foreign: bool = False,
    ) -> None:
        """Authorise one action that is not an API operation of its own: a function URL's
        ``lambda:InvokeFunctionUrl`` (with ``lambda:FunctionUrlAuthType`` in ``context``), or what a
        mapping, destination or schedule does with its role (``role_session``). ``principal`` may be a
        service principal or ``ANONYMOUS``, which only resource policies admit. ``foreign``: the resource
        is a broker's (an SQS queue, an SNS topic), whose resource policy lambdad cannot see, so the
        principal's identity policies decide alone, whichever account its ARN names."""
        keys = {
            **_global_keys(scope),
            **(principal_keys(principal) if isinstance(principal, Principal) else {}),
        }
        identity = self._identity(principal) if isinstance(principal, Principal) else []
        owner = principal.account if foreign and isinstance(principal, Principal) else None
        merged = {**keys, **(context or {})}
        self._check(principal, action, resource, merged, identity, scope, owner=owner)

    def authorize_caller(
        self, caller: Caller, service: str, operation: str, params: Mapping[str, Any], scope: Scope
    ) -> None:
        """Authorise a request a function sent from its sandbox, as a session of its execution role."""
        principal = caller_principal(caller)
        unknown_role = self._store.trust_policy(caller.role) is None
        self._authorize(principal, service, operation, params, scope, None, default_policy=unknown_role)

    def _authorize(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        scope: Scope,
        context: Mapping[str, Any] | None,
        *,
        default_policy: bool,
    ) -> None:
        access = access_of(service, operation, params, scope)
        if access.action is None:
            return
        resource = access.resource
        if service == "iam" and operation in _OWN_USER and "UserName" not in params:
            # Without a UserName these act on the calling user (IAM: "defaults to the caller"), whose
            # ARN is the resource its policies must allow (e.g. ``user/${aws:username}``).
            resource = principal.arn
        keys = {**_global_keys(scope), **principal_keys(principal), **(context or {})}
        identity = [_DEFAULT_ROLE] if default_policy else self._identity(principal)
        operation_keys = dict(access.context)
        subnets = operation_keys.get("lambda:SubnetIds")
        if subnets is not None and self._subnet_vpcs is not None:
            operation_keys["lambda:VpcIds"] = tuple(dict.fromkeys(self._subnet_vpcs(subnets)))
        self._check(principal, access.action, resource, {**keys, **operation_keys}, identity, scope)
        for layer in layers_used(service, operation, params):
            self._check(principal, "lambda:GetLayerVersion", layer, keys, identity, scope)
        for role, to_service in passed_roles(service, operation, params):
            passing = {**keys, "iam:PassedToService": to_service}
            self._check(principal, "iam:PassRole", role, passing, identity, scope, resource_policy=False)
            # A value that is no role ARN at all is the input validation's to refuse (ValidationException,
            # as AWS answers ``Role: r1``), after this check of the caller.
            if self._check_roles and to_service == "lambda.amazonaws.com" and _ROLE_ARN.fullmatch(role):
                trust = self._store.trust_policy(role)
                if trust is None or not _trusted(trust, role, to_service):
                    raise InvalidParameterValueException(ROLE_CANNOT_BE_ASSUMED)

    def _check(
        self,
        principal: Principal | str,
        action: str,
        resource: str,
        keys: Mapping[str, Any],
        identity: Sequence[Policy],
        scope: Scope,
        *,
        resource_policy: bool = True,
        owner: str | None = None,
    ) -> None:
        """Evaluate one action on one resource; raise AccessDeniedException unless allowed. ``owner``:
        the account the resource counts as in (default: the one its ARN names, else the scope's)."""
        owner = owner or _account_of(resource) or scope.account
        policy = self._resource_policy(resource, action) if resource_policy else None
        request = Request(principal, action, resource, owner, Context(keys))
        outcome = evaluate(request, identity, policy)
        if outcome is not Outcome.ALLOWED:
            who = principal.arn if isinstance(principal, Principal) else principal
            raise AccessDeniedException(denial_message(who, action, resource, outcome))

    def _identity(self, principal: Principal) -> list[Policy]:
        if principal.kind is PrincipalKind.ROOT:
            return []
        return [
            policy for document in self._store.identity_policies(principal) if (policy := _parse(document))
        ]

    def _resource_policy(self, resource: str, action: str) -> Policy | None:
        if action == "sts:AssumeRole":  # a role's trust policy is its resource policy
            trust = self._store.trust_policy(resource)
            return _parse(trust, PolicyKind.TRUST) if trust else None
        if self._resources is None or resource == "*":
            return None
        return self._resources.resource_policy(resource)


def denial_message(principal: str, action: str, resource: str, outcome: Outcome) -> str:
    """AWS's AccessDeniedException message for a refused request."""
    return (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        + outcome.reason(action)
    )


def caller_principal(caller: Caller) -> Principal:
    """The role session a function's requests act as (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/FN``)."""
    return role_session(caller.role, caller.principal.rsplit("/", 1)[-1])


def role_session(role_arn: str, session: str) -> Principal:
    """A session of ``role_arn`` named ``session``, as a Principal (what a function, a mapping or a
    schedule acts as). Its ``user_id`` stands in for AWS's ``AROA...:SESSION`` until the identity store
    hands out role ids."""
    account = role_arn.split(":")[4]
    role_name = role_arn.rsplit("/", 1)[-1]
    arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
    return Principal(account, PrincipalKind.ASSUMED_ROLE, arn, f"{role_name}:{session}", role_arn=role_arn)


def _global_keys(scope: Scope) -> dict[str, Any]:
    """The global condition keys every request carries (the transport's context may override them)."""
    now = datetime.now(UTC)
    return {
        "aws:RequestedRegion": scope.region,
        "aws:CurrentTime": now,
        "aws:EpochTime": int(now.timestamp()),
    }


def principal_keys(principal: Principal) -> dict[str, Any]:
    """The global condition keys a principal brings: aws:PrincipalArn, aws:PrincipalAccount,
    aws:PrincipalType, aws:userid and (for IAM users) aws:username."""
    keys: dict[str, Any] = {
        "aws:PrincipalArn": principal.role_arn or principal.arn,
        "aws:PrincipalAccount": principal.account,
        "aws:PrincipalType": {
            PrincipalKind.ROOT: "Account",
            PrincipalKind.USER: "User",
            PrincipalKind.ASSUMED_ROLE: "AssumedRole",
        }[principal.kind],
        "aws:userid": principal.user_id,
    }
    if principal.kind is PrincipalKind.USER:
        keys["aws:username"] = principal.arn.rsplit("/", 1)[-1]
    return keys


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


def _trusted(trust: str, role: str, service: str) -> bool:
    try:
        return trusts(trust, service, role)
    except MalformedPolicy:
        return False


@functools.lru_cache(maxsize=1024)
def _parse(document: str, kind: PolicyKind = PolicyKind.IDENTITY) -> Policy | None:
    """A stored policy, parsed once; one that no longer parses (stored by an older lambdad) is
    skipped with a warning rather than failing every request."""
    try:
        return parse_policy(document, kind)
    except MalformedPolicy as error:
        log.warning("a stored %s policy does not parse (%s); it is ignored", kind, error.message)
        return None


# --- the resource policies of Lambda's resources --------------------------------------------------------


class LambdaResourcePolicies:
    """Functions' policies (AddPermission statements, PutResourcePolicy documents) and layer versions'
    (AddLayerVersionPermission statements), read through the services that own them."""

    def __init__(self, permissions: Any, layers: Any) -> None:
        self._permissions = permissions  # services.permissions.PermissionService
        self._layers = layers  # services.layers.LayerService

    def resource_policy(self, arn: str) -> Policy | None:
        statements = self._statements(arn)
        return policy_of(statements) if statements else None

    def _statements(self, arn: str) -> list[dict[str, Any]]:
        parts = arn.split(":")
        if len(parts) < 7 or parts[2] != "lambda":
            return []
        scope = Scope(parts[4], parts[3])
        try:
            if parts[5] == "function":
                ref = parse_function_ref(arn)
                if ref is None:
                    return []
                statements: list[dict[str, Any]] = self._permissions.statements(
                    scope, ref.name, ref.qualifier
                )
                return statements
            layer = parse_layer_arn(arn)
            if parts[5] == "layer" and layer is not None and layer.version is not None:
                found: list[dict[str, Any]] = self._layers.get(scope, layer.name, layer.version).statements
                return found
        except ResourceNotFoundException:
            return []
        return []


def policy_of(statements: Sequence[Mapping[str, Any]]) -> Policy:
    """A resource policy from stored statements (AddPermission's, PutResourcePolicy's, a layer's)."""
    return from_statements(statements, PolicyKind.RESOURCE)


# --- what a role lambdad acts with may do (schedules, mappings, destinations) ------------------------------


class RoleActions:
    """``lambdad.policy.roles.RolePermissions`` from the identity store: a role the store has must trust
    the service that assumes it and allow the action (its identity policies, and the resource's policy
    where the resource has one); a role the store does not know is not checked (lambdad's behaviour
    before identities, and all of it with authentication off, where the composition root passes none)."""

    def __init__(self, store: PolicyStore, authorizer: Authorizer) -> None:
        self._store = store
        self._authorizer = authorizer

    def denial(
        self,
        role_arn: str,
        action: str,
        resource: str,
        *,
        service: str,
        session: str,
        context: Mapping[str, Any] | None = None,
    ) -> str | None:
        trust = self._store.trust_policy(role_arn)
        if trust is None:
            return None  # unknown to the store: a name only, as before identities
        # The keys AWS gives a service's AssumeRole (aws:SourceAccount, aws:SourceArn), which confused
        # deputy guards in trust policies test; the action itself is the role session's own request.
        try:
            trusted = trusts(trust, service, role_arn, context=Context(dict(context or {})))
        except MalformedPolicy:
            trusted = False
        if not trusted:
            return f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        principal = role_session(role_arn, session)
        account = _account_of(resource) or principal.account
        scope = Scope(account, _region_of(resource) or "us-east-1")
        # Lambda's own resources (a function destination) have policies here; a broker's queue or topic
        # has none lambdad can see: the role's identity policy decides alone.
        foreign = resource.split(":")[2:3] != ["lambda"]
        try:
            self._authorizer.authorize_action(principal, action, resource, scope, foreign=foreign)
        except AccessDeniedException as denied:
            return denied.message
        return None


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None
