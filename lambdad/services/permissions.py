"""Resource-based policies (AddPermission, RemovePermission, GetPolicy) and the question other parts of
lambdad ask of them: does this function's policy let principal P perform action A?

A policy belongs to the function itself (its statements' Resource is the unqualified ARN), to one
published version or to one alias, as on AWS; ``$LATEST`` has none of its own. Each policy carries a
RevisionId of its own that every change renews. Until a target has a policy, the RevisionId a caller
may name as a precondition is the version's or the alias's.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import LATEST, Principal, PrincipalKind, Scope, is_version_number
from lambdad.policy import ANONYMOUS, Context, MalformedPolicy, PolicyKind, parse_policy
from lambdad.policy.document import from_statements
from lambdad.policy.evaluation import admits
from lambdad.services.changes import EVERYTHING, POLICY, FunctionChanges
from lambdad.services.resolution import REVISION_MISMATCH, resolve
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import function_configs as config_records
from lambdad.store import functions as records
from lambdad.store.function_configs import Policy

POLICY_VERSION = "2012-10-17"
NO_SUCH_POLICY = "The resource you requested does not exist."
NO_POLICY_TO_REMOVE = "No policy is associated with the given resource."
ALIAS_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve "
    "the latest Revision Id"
)
INVALID_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."

_ACCOUNT = re.compile(r"^\d{12}$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9.-]*\.(amazonaws\.com(\.cn)?|amazon\.com)$")
_IAM_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:.+$")
_ALIAS_NAME = re.compile(r"^[a-zA-Z0-9-_]+$")


@dataclass(frozen=True)
class PermissionGrant:
    """The members of an AddPermission call that shape its statement."""

    statement_id: str
    action: str
    principal: str
    source_arn: str | None = None
    source_account: str | None = None
    event_source_token: str | None = None
    principal_org_id: str | None = None
    function_url_auth_type: str | None = None
    invoked_via_function_url: bool | None = None


@dataclass(frozen=True)
class AccessRequest:
    """Who asks to do what, with the context AWS's policy conditions can test.

    ``principal`` is ``"*"`` for an anonymous caller (only statements whose Principal is ``"*"`` admit
    one), a 12-digit account id, an IAM user/role ARN, or a service principal (``s3.amazonaws.com``).
    Context members left None are missing keys: positive condition tests fail, negated ones hold, as in IAM.
    """

    principal: str
    action: str
    function_url_auth_type: str | None = None
    source_arn: str | None = None
    source_account: str | None = None
    principal_org_id: str | None = None
    event_source_token: str | None = None
    invoked_via_function_url: bool | None = None


class PermissionService:
    """Resource-based policies on functions, versions and aliases."""

    def __init__(self, database: Database, changes: FunctionChanges) -> None:
        self._database = database
        self._changes = changes
        # Statements by (scope, name, qualifier), for ``allows``: a function URL asks on every request.
        # Any change to the function drops its entries; the generation keeps a read that overlapped a
        # change from storing what it read before the change.
        self._statements: dict[tuple[Scope, str, str], list[dict[str, Any]]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        changes.subscribe(self._forget)

    def add(
        self,
        scope: Scope,
        function_name: str,
        grant: PermissionGrant,
        qualifier: str | None = None,
        revision_id: str | None = None,
    ) -> dict[str, Any]:
        """AddPermission: the statement added, in AWS's shape."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            target_revision = _target_revision(connection, scope, name, qualifier, missing_function=None)
            policy = config_records.get_policy(connection, scope, name, qualifier or "", for_update=True)
            _check_revision(revision_id, policy.revision_id if policy else target_revision, qualifier)
            statements = policy.statements if policy else []
            if any(statement.get("Sid") == grant.statement_id for statement in statements):
                raise ResourceConflictException(
                    f"The statement id ({grant.statement_id}) provided already exists. Please provide a new "
                    "statement id, or remove the existing statement."
                )
            statement = build_statement(grant, scope.function_arn(name, qualifier))
            updated = Policy([*statements, statement], str(uuid.uuid4()))
            config_records.save_policy(connection, scope, name, qualifier or "", updated)
        self._changes.notify(scope, name, POLICY)
        return statement

    def remove(
        self,
        scope: Scope,
        function_name: str,
        statement_id: str,
        qualifier: str | None = None,
        revision_id: str | None = None,
    ) -> None:
        """RemovePermission: a policy left without statements is gone (GetPolicy then answers 404)."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.write() as connection:
            _target_revision(
                connection,
                scope,
                name,
                qualifier,
                missing_function=f"No policy found for: {scope.function_arn(name)}",
            )
            policy = config_records.get_policy(connection, scope, name, qualifier or "", for_update=True)
            if policy is None:
                raise ResourceNotFoundException(NO_POLICY_TO_REMOVE)
            _check_revision(revision_id, policy.revision_id, qualifier)
            kept = [statement for statement in policy.statements if statement.get("Sid") != statement_id]
            if len(kept) == len(policy.statements):
                raise ResourceNotFoundException(f"Statement {statement_id} is not found in resource policy.")
            config_records.save_policy(
                connection, scope, name, qualifier or "", Policy(kept, str(uuid.uuid4()))
            )
        self._changes.notify(scope, name, POLICY)

    def get(self, scope: Scope, function_name: str, qualifier: str | None = None) -> tuple[str, str]:
        """GetPolicy: (the policy document as a JSON string, its RevisionId)."""
        name, qualifier = _target(scope, function_name, qualifier)
        with self._database.read() as connection:
            policy = config_records.get_policy(connection, scope, name, qualifier or "")
        if policy is None:  # no function, no such version or alias, or nothing granted
            raise ResourceNotFoundException(NO_SUCH_POLICY)
        return policy_document(policy.statements), policy.revision_id

    def put_document(
        self, scope: Scope, resource_arn: str, document: str, revision_id: str | None = None
    ) -> tuple[str, str]:
        """PutResourcePolicy: ``document`` replaces the whole policy of the function, version or alias
        (AddPermission's statements included); (the policy as stored, its new RevisionId)."""
        try:
            parse_policy(document, PolicyKind.RESOURCE)
        except MalformedPolicy as malformed:
            raise InvalidParameterValueException(malformed.message) from None
        raw = json.loads(document)["Statement"]
        statements = [raw] if isinstance(raw, dict) else list(raw)
        name, qualifier = _target(scope, resource_arn, None)
        with self._database.write() as connection:
            target_revision = _target_revision(connection, scope, name, qualifier, missing_function=None)
            policy = config_records.get_policy(connection, scope, name, qualifier or "", for_update=True)
            _check_revision(revision_id, policy.revision_id if policy else target_revision, qualifier)
            updated = Policy(statements, str(uuid.uuid4()))
            config_records.save_policy(connection, scope, name, qualifier or "", updated)
        self._changes.notify(scope, name, POLICY)
        return policy_document(statements), updated.revision_id

    def delete_document(self, scope: Scope, resource_arn: str, revision_id: str | None = None) -> None:
        """DeleteResourcePolicy: the whole policy goes (404 when there is none)."""
        name, qualifier = _target(scope, resource_arn, None)
        with self._database.write() as connection:
            _target_revision(connection, scope, name, qualifier, missing_function=None)
            policy = config_records.get_policy(connection, scope, name, qualifier or "", for_update=True)
            if policy is None:
                raise ResourceNotFoundException(NO_POLICY_TO_REMOVE)
            _check_revision(revision_id, policy.revision_id, qualifier)
            config_records.save_policy(connection, scope, name, qualifier or "", Policy([], ""))
        self._changes.notify(scope, name, POLICY)

    def statements(
        self, scope: Scope, function_name: str, qualifier: str | None = None
    ) -> list[dict[str, Any]]:
        """The statements of a function's (or version's, or alias's) policy; [] when it has none."""
        name, qualifier = resolve(scope, function_name, qualifier)
        key = (scope, name, "" if qualifier in (None, LATEST) else str(qualifier))
        with self._lock:
            cached = self._statements.get(key)
            generation = self._generation
        if cached is not None:
            return cached
        with self._database.read() as connection:
            policy = config_records.get_policy(connection, *key)
        statements = policy.statements if policy else []
        with self._lock:
            if generation == self._generation:
                self._statements[key] = statements
        return statements

    def _forget(self, scope: Scope, name: str, what: str) -> None:
        with self._lock:
            self._generation += 1
            for key in [key for key in self._statements if what == EVERYTHING or key[:2] == (scope, name)]:
                del self._statements[key]

    def allows(
        self, scope: Scope, function_name: str, request: AccessRequest, qualifier: str | None = None
    ) -> bool:
        """Whether the resource-based policy of the function (``qualifier`` None or ``$LATEST``), or of
        the published version or alias ``qualifier``, allows ``request``: some Allow statement matches
        its principal, action and conditions and no Deny statement does.

        A function URL answering a request checks this with ``action="lambda:InvokeFunctionUrl"`` and
        ``function_url_auth_type`` set to the URL's AuthType (``"NONE"`` with ``principal="*"`` for an
        anonymous caller); AWS's default NONE statement (Principal ``*``, Condition
        ``lambda:FunctionUrlAuthType = NONE``) then matches. A function, version or alias that does not
        exist has no policy, so nothing is allowed; this never raises for a missing function.
        """
        try:
            statements = self.statements(scope, function_name, qualifier)
        except ResourceNotFoundException:
            return False
        return policy_allows(statements, request)


# --- statements ------------------------------------------------------------------------------------------


def build_statement(grant: PermissionGrant, resource: str) -> dict[str, Any]:
    """The statement AWS builds from an AddPermission call."""
    statement: dict[str, Any] = {
        "Sid": grant.statement_id,
        "Effect": "Allow",
        "Principal": principal_element(grant.principal),
        "Action": grant.action,
        "Resource": resource,
    }
    equals = {
        key: value
        for key, value in (
            ("AWS:SourceAccount", grant.source_account),
            ("lambda:EventSourceToken", grant.event_source_token),
            ("lambda:FunctionUrlAuthType", grant.function_url_auth_type),
            ("aws:PrincipalOrgID", grant.principal_org_id),
        )
        if value
    }
    condition: dict[str, Any] = {}
    if equals:
        condition["StringEquals"] = equals
    if grant.invoked_via_function_url:
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if grant.source_arn:
        condition["ArnLike"] = {"AWS:SourceArn": grant.source_arn}
    if condition:
        statement["Condition"] = condition
    return statement


def principal_element(principal: str) -> str | dict[str, str]:
    """A Principal as AWS writes it: ``*``, an account's root, an IAM ARN, or a service."""
    if principal == "*":
        return "*"
    if _ACCOUNT.match(principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if _IAM_ARN.match(principal):
        return {"AWS": principal}
    if _SERVICE.match(principal):
        return {"Service": principal}
    raise InvalidParameterValueException(INVALID_PRINCIPAL)


def policy_document(statements: list[dict[str, Any]]) -> str:
    """The policy as GetPolicy's ``Policy`` string."""
    document = {"Version": POLICY_VERSION, "Id": "default", "Statement": statements}
    return json.dumps(document, separators=(",", ":"))


def policy_allows(statements: Iterable[dict[str, Any]], request: AccessRequest) -> bool:
    """Whether ``statements`` allow ``request`` (an explicit Deny wins over any Allow), evaluated with
    AWS's policy language (``lambdad.policy``); a statement naming the caller's account admits it."""
    policy = from_statements(list(statements), PolicyKind.RESOURCE)
    context = Context(
        {
            "aws:SourceArn": request.source_arn,
            "aws:SourceAccount": request.source_account,
            "aws:PrincipalOrgID": request.principal_org_id,
            "lambda:EventSourceToken": request.event_source_token,
            "lambda:FunctionUrlAuthType": request.function_url_auth_type,
            "lambda:InvokedViaFunctionUrl": request.invoked_via_function_url,
        }
    )
    return admits(policy, principal_of(request.principal), request.action, context)


def principal_of(principal: str) -> Principal | str:
    """An AccessRequest's principal for the evaluator: ``*`` anonymous, an account id or ARN its root,
    an IAM user, a role (or a session of one), else a service principal."""
    if principal == "*":
        return ANONYMOUS
    if _ACCOUNT.match(principal):
        return Principal.root(principal)
    match = _IAM_ARN.match(principal)
    if match is None:
        return principal
    account, resource = principal.split(":")[4], principal.split(":", 5)[5]
    if resource == "root":
        return Principal.root(account)
    if resource.startswith("user/"):
        return Principal(account, PrincipalKind.USER, principal, principal)
    if resource.startswith("assumed-role/"):
        role = f"arn:aws:iam::{account}:role/{resource.split('/')[1]}"
        return Principal(account, PrincipalKind.ASSUMED_ROLE, principal, principal, role_arn=role)
    return Principal(account, PrincipalKind.ASSUMED_ROLE, principal, principal, role_arn=principal)


# --- targets ---------------------------------------------------------------------------------------------


def _target(scope: Scope, function_name: str, qualifier: str | None) -> tuple[str, str | None]:
    name, qualifier = resolve(scope, function_name, qualifier)
    if qualifier == LATEST:
        raise InvalidParameterValueException("We currently do not support adding policies for $LATEST.")
    return name, qualifier


def _target_revision(
    connection: Connection, scope: Scope, name: str, qualifier: str | None, *, missing_function: str | None
) -> str:
    """The RevisionId of the function's ``$LATEST``, version or alias the policy attaches to, after
    checking it exists (AWS's messages for each kind of absence)."""
    if qualifier is None or is_version_number(qualifier) or not _ALIAS_NAME.match(qualifier):
        version = records.get_version(connection, scope, name, qualifier or LATEST, for_update=True)
        if version is None:
            exists = records.function_exists(connection, scope, name)
            if not exists and missing_function is not None:
                raise ResourceNotFoundException(missing_function)
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(name, qualifier if exists else None)}"
            )
        return version.revision_id
    if not records.function_exists(connection, scope, name):
        raise ResourceNotFoundException(missing_function or f"Function not found: {scope.function_arn(name)}")
    alias = alias_records.get_alias(connection, scope, name, qualifier, for_update=True)
    if alias is None:
        raise ResourceNotFoundException(f"Cannot find alias arn: {scope.function_arn(name, qualifier)}")
    return alias.revision_id


def _check_revision(given: str | None, current: str, qualifier: str | None) -> None:
    if given is None or given == current:
        return
    is_alias = qualifier is not None and not is_version_number(qualifier)
    raise PreconditionFailedException(ALIAS_REVISION_MISMATCH if is_alias else REVISION_MISMATCH)
