"""AWS's policy evaluation logic, for identity-based and resource-based policies (IAM User Guide,
"Policy evaluation logic" and "Cross-account policy evaluation logic").

- Every request is denied unless some policy allows it (implicit deny), except that the root user of
  the account that owns the resource may do anything its account's policies do not explicitly deny.
- An explicit Deny in any applicable policy wins over every Allow.
- Within one account, an Allow in the caller's identity-based policies OR in the resource's policy
  (naming the caller itself, its role, or anyone) is enough. A resource policy that names only the
  caller's account delegates to the account: the caller's identity-based policy must then allow too.
- Across accounts, both are needed: the resource policy must allow the caller (or its account) AND the
  caller's identity-based policies must allow the request (a foreign account's root needs no policy).
- Service principals and anonymous callers have no identity policies: only the resource policy decides.

Permission boundaries, session policies and organizations' SCPs are not modelled (lambdad has none).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lambdad.models import Principal, PrincipalKind
from lambdad.policy.conditions import Context, conditions_hold, matches
from lambdad.policy.document import Effect, Policy, PolicyKind, Principals, Statement, parse_policy

#: The principal of a request nobody signed (a function URL with AuthType NONE).
ANONYMOUS = "*"


@dataclass(frozen=True)
class Request:
    """What is asked: ``principal`` acts (a ``Principal``, a service principal such as
    ``s3.amazonaws.com``, or ``ANONYMOUS``), performing ``action`` on ``resource``, an ARN or ``*``, that
    ``resource_account`` owns; ``context`` holds the condition keys."""

    principal: Principal | str
    action: str
    resource: str
    resource_account: str
    context: Context


class Outcome(enum.Enum):
    """The decision, and for a denial the reason AWS's message gives."""

    ALLOWED = "allowed"
    EXPLICIT_DENY_IDENTITY = "with an explicit deny in an identity-based policy"
    EXPLICIT_DENY_RESOURCE = "with an explicit deny in a resource-based policy"
    NO_IDENTITY_ALLOW = "because no identity-based policy allows the {action} action"
    NO_RESOURCE_ALLOW = "because no resource-based policy allows the {action} action"

    def reason(self, action: str) -> str:
        return self.value.format(action=action)


class _Named(enum.IntEnum):
    """How a resource policy statement's Principal names the caller."""

    NOT = 0
    ACCOUNT = 1  # the caller's account (``123456789012`` or ``arn:aws:iam::123456789012:root``)
    DIRECTLY = 2  # the caller, its role, a service principal, or anyone


def evaluate(request: Request, identity: Sequence[Policy], resource: Policy | None = None) -> Outcome:
    """The decision for ``request`` given the caller's identity-based policies and the resource's."""
    identity_allows = False
    for policy in identity:
        for statement in policy.statements:
            if _applies(statement, request, policy):
                if statement.effect is Effect.DENY:
                    return Outcome.EXPLICIT_DENY_IDENTITY
                identity_allows = True
    resource_allows = _Named.NOT
    for statement in resource.statements if resource is not None else ():
        named = _principal_named(statement, request.principal)
        if named is _Named.NOT or not _applies(statement, request, resource):
            continue
        if statement.effect is Effect.DENY:
            return Outcome.EXPLICIT_DENY_RESOURCE
        resource_allows = max(resource_allows, named)
    principal = request.principal
    if isinstance(principal, str):  # a service or an anonymous caller: the resource policy alone
        return Outcome.ALLOWED if resource_allows else Outcome.NO_RESOURCE_ALLOW
    is_root = principal.kind is PrincipalKind.ROOT
    if principal.account == request.resource_account:
        if is_root or identity_allows or resource_allows is _Named.DIRECTLY:
            return Outcome.ALLOWED
        return Outcome.NO_IDENTITY_ALLOW
    if not resource_allows:
        return Outcome.NO_RESOURCE_ALLOW
    return Outcome.ALLOWED if is_root or identity_allows else Outcome.NO_IDENTITY_ALLOW


def trusts(
    trust_policy: str | Policy,
    principal: Principal | str,
    role_arn: str | None = None,
    action: str = "sts:AssumeRole",
    context: Context | None = None,
) -> bool:
    """Whether a role's trust policy lets ``principal`` (a ``Principal`` or a service principal such
    as ``lambda.amazonaws.com``) perform ``action`` (``sts:AssumeRole``) on the role. A trust policy
    naming only the caller's account admits it here; AssumeRole then also needs the caller's
    identity-based policy to allow ``sts:AssumeRole`` (``Authorizer`` evaluates both)."""
    policy = (
        trust_policy if isinstance(trust_policy, Policy) else parse_policy(trust_policy, PolicyKind.TRUST)
    )
    return admits(policy, principal, action, context or Context())


def admits(
    policy: Policy, principal: Principal | str, action: str, context: Context, resource: str | None = None
) -> bool:
    """Whether a resource-based or trust policy on its own lets ``principal`` (named itself or through
    its account) perform ``action``: some statement allows and none denies. ``resource`` None: the
    statements' Resource elements are not consulted (the policy is asked about its own resource)."""
    request = Request(principal, action, resource or "*", "", context)
    allowed = False
    for statement in policy.statements:
        if _principal_named(statement, principal) is _Named.NOT:
            continue
        if not _applies(statement, request, policy, resources=resource is not None):
            continue
        if statement.effect is Effect.DENY:
            return False
        allowed = True
    return allowed


# --- matching -------------------------------------------------------------------------------------------


def _applies(
    statement: Statement, request: Request, policy: Policy | None, *, resources: bool = True
) -> bool:
    """Whether a statement's actions, resources and conditions cover the request (its principal is
    the caller's business, not this function's)."""
    if statement.actions is not None and not _any_action(statement.actions, request.action):
        return False
    if statement.not_actions is not None and _any_action(statement.not_actions, request.action):
        return False
    variables = policy is not None and policy.version == "2012-10-17"
    context = request.context if variables else None
    if resources and not _resources_cover(statement, request.resource, context):
        return False
    return conditions_hold(statement.conditions, request.context, variables)


def _resources_cover(statement: Statement, resource: str, context: Context | None) -> bool:
    if statement.resources is not None and not _any_resource(statement.resources, resource, context):
        return False
    return statement.not_resources is None or not _any_resource(statement.not_resources, resource, context)


def _any_action(patterns: Iterable[str], action: str) -> bool:
    """Actions match case-insensitively, with ``*`` and ``?``."""
    return any(matches(pattern, action, ignore_case=True) for pattern in patterns)


def _any_resource(patterns: Iterable[str], resource: str, context: Context | None) -> bool:
    """Resources match case-sensitively, with ``*`` and ``?`` and policy variables; a request on
    ``*`` (a listing, an account-wide call) is covered only by a pattern that is ``*`` itself."""
    if resource == "*":
        return "*" in patterns
    return any(matches(pattern, resource, context) for pattern in patterns)


def _principal_named(statement: Statement, principal: Principal | str) -> _Named:
    if statement.principal is not None:
        return _names(statement.principal, principal)
    if statement.not_principal is not None:
        # NotPrincipal excludes exactly the identities it lists: an account listed there excludes its
        # root user, not the users and roles in it.
        excluded = _names(statement.not_principal, principal) is _Named.DIRECTLY
        return _Named.NOT if excluded else _Named.DIRECTLY
    return _Named.NOT


def _names(element: Principals, principal: Principal | str) -> _Named:
    if element.anyone:
        return _Named.DIRECTLY
    if isinstance(principal, str):
        return _Named.DIRECTLY if principal != ANONYMOUS and principal in element.service else _Named.NOT
    named = _Named.NOT
    own = {principal.arn, *([principal.role_arn] if principal.role_arn else [])}
    for entry in element.aws:
        if entry in own:
            return _Named.DIRECTLY
        account = _account_of(entry)
        if account == principal.account:
            if principal.kind is PrincipalKind.ROOT:
                return _Named.DIRECTLY
            named = _Named.ACCOUNT
    return named


def _account_of(entry: str) -> str | None:
    """The account a Principal entry names as a whole: ``123456789012`` or ``arn:aws:iam::ID:root``."""
    if entry.isdigit() and len(entry) == 12:
        return entry
    parts = entry.split(":")
    if len(parts) == 6 and parts[2] == "iam" and parts[5] == "root":
        return parts[4]
    return None
