"""AWS's policy grammar: a JSON policy document parsed into statements, with IAM's validation.

One grammar serves three kinds of policy, which differ only in what a statement must or must not name:
identity-based policies (attached to users and roles) name no principal; resource-based policies (a
function's, a layer version's) and trust policies (a role's AssumeRolePolicyDocument) must name one; a
trust policy's actions are the ``sts:AssumeRole*`` family and it names no resource.

A document that breaks the grammar raises ``MalformedPolicy`` with the words IAM answers in its
``MalformedPolicyDocument`` error ("Syntax errors in policy.", "Policy statement must contain actions.",
...); the IAM API answers it as that error, Lambda's PutResourcePolicy as InvalidParameterValueException.

Why hand-written: the libraries that read AWS policies either only parse (policyuniverse, last released
2023, no evaluation of conditions or principals), lint against AWS's live service reference
(iam-policy-validator calls AWS), or evaluate a small subset for mocking (moto's access_control: no
conditions, no NotPrincipal, no resource policies). None gives the evaluation ``lambdad.policy.evaluation``
needs, and the grammar is small; moto's validator was read for IAM's messages.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

VERSIONS = ("2008-10-17", "2012-10-17")
_TOP_LEVEL = {"Version", "Id", "Statement"}
_STATEMENT_ELEMENTS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}
_PRINCIPAL_TYPES = {"AWS", "Service", "Federated", "CanonicalUser"}
_ORDERINGS = ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan", "GreaterThanEquals")
_ACTION = re.compile(r"^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]*)$")
_ACCOUNT = re.compile(r"^\d{12}$")
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:[^*?]+$")
_TRUST_ACTIONS = re.compile(
    r"^(sts:(AssumeRole|AssumeRoleWithSAML|AssumeRoleWithWebIdentity|TagSession|SetSourceIdentity"
    r"|SetContext)|sts:\*|\*)$",
    re.IGNORECASE,
)


class PolicyKind(enum.StrEnum):
    """What a policy is attached to, which decides the elements its statements need."""

    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"


class MalformedPolicy(ValueError):
    """A document that breaks the policy grammar; ``message`` is IAM's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Effect(enum.StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Principals:
    """A Principal (or NotPrincipal) element. ``anyone`` for ``"*"`` or ``{"AWS": "*"}``."""

    anyone: bool = False
    aws: tuple[str, ...] = ()  # account ids and IAM/STS ARNs, as written
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


OPERATORS = frozenset(
    {
        *(f"String{test}" for test in ("Equals", "NotEquals", "EqualsIgnoreCase", "NotEqualsIgnoreCase")),
        "StringLike",
        "StringNotLike",
        *(f"{kind}{test}" for kind in ("Numeric", "Date") for test in _ORDERINGS),
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Null",
    }
)
SET_OPERATORS = ("ForAnyValue", "ForAllValues")


@dataclass(frozen=True)
class Operator:
    """A condition operator taken apart: ``ForAllValues:StringLikeIfExists`` is StringLike with the
    set operator ForAllValues and IfExists."""

    base: str
    set_operator: str | None = None
    if_exists: bool = False


def parse_operator(text: str) -> Operator:
    """Take a condition operator apart, or raise IAM's error for one it does not know."""
    set_operator, _, rest = text.rpartition(":")
    if set_operator and set_operator not in SET_OPERATORS:
        raise MalformedPolicy(f"Invalid Condition type : {text}")
    base, if_exists = (rest[: -len("IfExists")], True) if rest.endswith("IfExists") else (rest, False)
    if base not in OPERATORS or (if_exists and base == "Null"):
        raise MalformedPolicy(f"Invalid Condition type : {text}")
    return Operator(base, set_operator or None, if_exists)


@dataclass(frozen=True)
class Condition:
    """One test of a Condition block: ``operator`` as written (``ForAnyValue:StringLikeIfExists``),
    a condition key (matched case-insensitively) and the values any of which may match."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One statement. Exactly one of each pair (actions/not_actions, resources/not_resources) is set
    (None for the other), except that a trust policy has neither resource element; ``principal`` and
    ``not_principal`` are None when absent."""

    effect: Effect
    sid: str | None = None
    principal: Principals | None = None
    not_principal: Principals | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A parsed policy document."""

    statements: tuple[Statement, ...]
    version: str = "2008-10-17"  # IAM's default: policy variables are literal text under it
    id: str | None = None


def parse_policy(document: str | Mapping[str, Any], kind: PolicyKind = PolicyKind.IDENTITY) -> Policy:
    """Parse and validate ``document`` (JSON text or its decoded object) as a policy of ``kind``."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise MalformedPolicy("Syntax errors in policy.") from None
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise MalformedPolicy("Syntax errors in policy.")
    unknown = set(document) - _TOP_LEVEL
    if unknown:
        raise MalformedPolicy("Syntax errors in policy.")
    version = document.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise MalformedPolicy("Policy document must be version 2012-10-17 or greater.")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicy("Syntax errors in policy.")
    raw = document["Statement"]
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise MalformedPolicy("Syntax errors in policy.")
    statements = tuple(_statement(item, kind) for item in items)
    sids = [statement.sid for statement in statements if statement.sid]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy("Statement IDs (SID) in a single policy must be unique.")
    return Policy(statements, version, policy_id)


def _statement(raw: Any, kind: PolicyKind) -> Statement:
    if not isinstance(raw, Mapping) or set(raw) - _STATEMENT_ELEMENTS:
        raise MalformedPolicy("Syntax errors in policy.")
    for first, second in (
        ("Action", "NotAction"),
        ("Resource", "NotResource"),
        ("Principal", "NotPrincipal"),
    ):
        if first in raw and second in raw:
            raise MalformedPolicy("Syntax errors in policy.")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicy("Syntax errors in policy.")
    if "Effect" not in raw:
        raise MalformedPolicy("Missing required field Effect")
    if raw["Effect"] not in ("Allow", "Deny"):
        raise MalformedPolicy(f"Invalid effect: {raw['Effect']}")
    actions, not_actions = _strings(raw, "Action"), _strings(raw, "NotAction")
    if actions is None and not_actions is None:
        raise MalformedPolicy("Policy statement must contain actions.")
    for action in (*(actions or ()), *(not_actions or ())):
        _check_action(action)
    resources, not_resources = _strings(raw, "Resource"), _strings(raw, "NotResource")
    principal, not_principal = _principals(raw.get("Principal")), _principals(raw.get("NotPrincipal"))
    if kind is PolicyKind.IDENTITY:
        if principal is not None or not_principal is not None:
            raise MalformedPolicy("Policy document should not specify a principal.")
    elif principal is None and not_principal is None:
        raise MalformedPolicy("Missing required field Principal")
    if kind is PolicyKind.TRUST:
        if resources is not None or not_resources is not None:
            raise MalformedPolicy("Has prohibited field Resource")
        if any(not _TRUST_ACTIONS.match(action) for action in actions or ()):
            raise MalformedPolicy(
                "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  "
                "and sts:AssumeRoleWithWebIdentity"
            )
    elif resources is None and not_resources is None:
        raise MalformedPolicy("Policy statement must contain resources.")
    return Statement(
        effect=Effect(raw["Effect"]),
        sid=sid,
        principal=principal,
        not_principal=not_principal,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        conditions=_conditions(raw.get("Condition")),
    )


def _strings(raw: Mapping[str, Any], element: str) -> tuple[str, ...] | None:
    """A string-or-list element as a tuple; None when absent. An empty list is as good as absent
    to IAM (it rejects the statement for lacking the element)."""
    if element not in raw:
        return None
    value = raw[element]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise MalformedPolicy("Syntax errors in policy.")
    return tuple(values) or None


def _check_action(action: str) -> None:
    if action == "*":
        return
    if ":" not in action:
        raise MalformedPolicy("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
    if action.count(":") > 1:
        raise MalformedPolicy("Actions/Condition can contain only one colon.")
    if not _ACTION.match(action):
        raise MalformedPolicy(f"Vendor {action.split(':', 1)[0]} is not valid")


def _principals(raw: Any) -> Principals | None:
    if raw is None:
        return None
    if raw == "*":
        return Principals(anyone=True)
    if not isinstance(raw, Mapping) or not raw or set(raw) - _PRINCIPAL_TYPES:
        raise MalformedPolicy("Syntax errors in policy.")
    found: dict[str, tuple[str, ...]] = {}
    for kind, value in raw.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise MalformedPolicy("Syntax errors in policy.")
        found[kind] = tuple(values)
    for value in found.get("AWS", ()):
        if value != "*" and not _ACCOUNT.match(value) and not _IAM_PRINCIPAL_ARN.match(value):
            raise MalformedPolicy(f'Invalid principal in policy: "AWS":"{value}"')
    return Principals(
        anyone="*" in found.get("AWS", ()),
        aws=tuple(value for value in found.get("AWS", ()) if value != "*"),
        service=found.get("Service", ()),
        federated=found.get("Federated", ()),
        canonical_user=found.get("CanonicalUser", ()),
    )


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise MalformedPolicy("Syntax errors in policy.")
    found = []
    for operator, tests in raw.items():
        parse_operator(operator)
        if not isinstance(tests, Mapping) or not tests:
            raise MalformedPolicy("Syntax errors in policy.")
        for key, value in tests.items():
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(item, str | bool | int | float) for item in values):
                raise MalformedPolicy("Syntax errors in policy.")
            found.append(Condition(operator, key, tuple(_text(item) for item in values)))
    return tuple(found)


def _text(value: str | bool | int | float) -> str:
    """Condition values as IAM compares them: JSON's true/false are the strings "true"/"false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_statements(
    statements: Sequence[Mapping[str, Any]], kind: PolicyKind = PolicyKind.RESOURCE
) -> Policy:
    """A policy (version 2012-10-17) from stored statements, each parsed on its own: one that does not
    parse (stored by an older lambdad) is left out, so it grants nothing (a Deny left out is logged)."""
    parsed: list[Statement] = []
    for statement in statements:
        try:
            parsed.extend(parse_policy({"Version": "2012-10-17", "Statement": [statement]}, kind).statements)
        except MalformedPolicy as malformed:
            log.warning(
                "a stored policy statement does not parse (%s); it is ignored: %s",
                malformed.message,
                statement,
            )
    return Policy(tuple(parsed), "2012-10-17")
