"""IAM: accounts and their root keys, users, access keys, roles, inline and managed policies, attachments;
and the two reads the authorizer and the SigV4 verifier need (``identity_policies``/``trust_policy``,
``signing_key``).

Several accounts share one store; every operation acts in the caller's account. Secrets are sealed with
the key ring (``access-key:<AKID>``) before they reach the store and are returned once, when made. Policy
documents are kept as the caller sent them and answered URL-encoded, as IAM does (botocore decodes them).
Managed policies (customer and AWS managed) and their attachments are ``managed_policies.ManagedPolicies``
(``IdentityService.policies``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from lambdad.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from lambdad.models import Principal, PrincipalKind, utcnow
from lambdad.services import iam_checks as checks
from lambdad.services.managed_policies import ManagedPolicies
from lambdad.store import Database
from lambdad.store import identity as records
from lambdad.store.identity import (
    ROLE,
    USER,
    AccessKeyRecord,
    AccountRecord,
    RoleRecord,
    UserRecord,
)
from lambdad.store.keyring import KeyRing

ACCESS_KEYS_PER_USER = 2
POLICY_VERSIONS_MAX = 5
DEFAULT_MAX_SESSION = 3600
MAX_ITEMS_DEFAULT = 100
_ACCOUNT_ID = re.compile(r"\d{12}")
_ROLE_ARN = re.compile(
    r"arn:aws:iam::(?P<account>\d{12}):role(?P<path>/(?:[\x21-\x7e]*/)?)(?P<name>[\w+=,.@-]+)"
)


@dataclass(frozen=True)
class SigningKey:
    """What the SigV4 verifier needs to know about an access key (the fields of ``api.sigv4``'s
    ``SigningIdentity``): its secret, whose it is, and for a session key its token and expiry."""

    secret_access_key: str
    principal: Principal
    session_token: str | None = None
    expires_at: datetime | None = None
    active: bool = True


def user_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def role_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def parse_role_arn(arn: str) -> tuple[str, str] | None:
    """(account, name) of a role ARN; None if it is not one."""
    match = _ROLE_ARN.fullmatch(arn)
    return (match["account"], match["name"]) if match else None


class IdentityService:
    """The IAM operations, one account at a time, over one store and one key ring."""

    def __init__(
        self,
        database: Database,
        keyring: KeyRing,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._keyring = keyring
        self._clock = clock
        #: Managed policies and their attachments to this service's users and roles.
        self.policies = ManagedPolicies(database, self._owner, self._check_identity_policy, clock)

    # --- accounts and root keys ---

    def bootstrap(
        self, account: str, access_key_id: str | None = None, secret: str | None = None
    ) -> tuple[str, str] | None:
        """Make ``account`` and its root key on the first start: (access key id, secret) to print once,
        the given pair when both are (``LAMBDAD_ROOT_ACCESS_KEY_ID``/``..._SECRET_ACCESS_KEY``), else new
        ones. None when the account exists already (later starts)."""
        if (access_key_id is None) != (secret is None):
            raise ValueError("give both the root access key id and its secret, or neither")
        if access_key_id is not None and not re.fullmatch(r"AKIA[A-Z0-9]{12,124}", access_key_id):
            raise ValueError("the root access key id must be AKIA followed by 12 or more capitals and digits")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9+/]{40}", secret):
            raise ValueError("the root secret access key must be 40 characters of A-Z, a-z, 0-9, + and /")
        try:
            with self._database.write() as connection:
                if records.get_account(connection, account) is not None:
                    return None
                return self._make_account(connection, account, "default", access_key_id, secret)
        except IntegrityError:
            return None  # another node of the cluster made it at the same moment: it prints the key

    def create_account(self, account_id: str | None = None, name: str | None = None) -> tuple[str, str, str]:
        """A new account and its root key: (account id, access key id, secret)."""
        if account_id is not None and not _ACCOUNT_ID.fullmatch(account_id):
            raise ValueError(f"an account id is 12 digits, not {account_id!r}")
        with self._database.write() as connection:
            if account_id is None:
                taken = {account.id for account in records.list_accounts(connection)}
                account_id = _random_digits(12)
                while account_id in taken:
                    account_id = _random_digits(12)
            elif records.get_account(connection, account_id) is not None:
                raise ValueError(f"account {account_id} exists already")
            key, secret = self._make_account(connection, account_id, name or account_id, None, None)
        return account_id, key, secret

    def list_accounts(self) -> list[AccountRecord]:
        with self._database.read() as connection:
            return records.list_accounts(connection)

    def _make_account(
        self, connection: Connection, account: str, name: str, key_id: str | None, secret: str | None
    ) -> tuple[str, str]:
        now = self._clock()
        records.insert_account(connection, AccountRecord(account, name, now))
        key_id = key_id or checks.access_key_id()
        secret = secret or checks.secret_access_key()
        sealed = self._keyring.seal(secret.encode(), f"access-key:{key_id}")
        records.insert_key(connection, AccessKeyRecord(key_id, account, None, "Active", sealed, now, None))
        return key_id, secret

    # --- the ports of the verifier and the authorizer ---

    def signing_key(self, access_key_id: str) -> SigningKey | None:
        """The long-term key ``access_key_id`` (root or user) as the verifier needs it; None if unknown."""
        with self._database.read() as connection:
            key = records.get_key(connection, access_key_id)
            if key is None:
                return None
            if key.user is None:
                principal = Principal.root(key.account)
            else:
                user = records.get_user(connection, key.account, key.user)
                if user is None:
                    return None
                principal = Principal(
                    key.account,
                    PrincipalKind.USER,
                    user_arn(key.account, user.path, user.name),
                    user.user_id,
                    access_key_id=access_key_id,
                )
        secret = self._keyring.open_sealed(key.sealed_secret, f"access-key:{access_key_id}").decode()
        if principal.kind is PrincipalKind.ROOT:
            principal = Principal(
                principal.account,
                principal.kind,
                principal.arn,
                principal.user_id,
                access_key_id=access_key_id,
            )
        return SigningKey(secret, principal, active=key.status == "Active")

    def identity_policies(self, principal: Principal) -> list[str]:
        """Every policy document that applies to ``principal``: a user's inline and attached managed ones
        (default versions); a role session's role's; none for root (the evaluator allows root everything
        in its own account, as AWS)."""
        if principal.kind is PrincipalKind.ROOT:
            return []
        with self._database.read() as connection:
            if principal.kind is PrincipalKind.USER:
                name = principal.arn.rsplit("/", 1)[-1]
                if records.get_user(connection, principal.account, name) is None:
                    return []
                return self._policies_of(connection, principal.account, USER, records.key_of(name))
            parsed = parse_role_arn(principal.role_arn or "")
            if parsed is None or records.get_role(connection, *parsed) is None:
                return []
            return self._policies_of(connection, parsed[0], ROLE, records.key_of(parsed[1]))

    def trust_policy(self, role_arn: str) -> str | None:
        """The trust policy of the role ``role_arn``; None if there is no such role."""
        role = self.role_by_arn(role_arn)
        return role.trust_policy if role else None

    def role_by_arn(self, arn: str) -> RoleRecord | None:
        """The role an ARN names (its path must match too); None if there is none."""
        parsed = parse_role_arn(arn)
        if parsed is None:
            return None
        with self._database.read() as connection:
            role = records.get_role(connection, *parsed)
        if role is None or role_arn(role.account, role.path, role.name) != arn:
            return None
        return role

    def _policies_of(self, connection: Connection, account: str, kind: str, owner: str) -> list[str]:
        documents = [document for _, document in records.list_inline(connection, account, kind, owner)]
        for arn in records.attached(connection, account, kind, owner):
            document = self.policies.default_document(connection, account, arn)
            if document is not None:
                documents.append(document)
        return documents

    # --- users ---

    def create_user(self, account: str, name: str, path: str | None = None) -> dict[str, Any]:
        checks.check_name(name, "userName", 64)
        path = path or "/"
        checks.check_path(path)
        record = UserRecord(account, name, path, checks.unique_id("AIDA"), self._clock())
        with checks.writing(self._database, f"User with name {name} already exists.") as connection:
            if records.get_user(connection, account, name) is not None:
                raise EntityAlreadyExists(f"User with name {name} already exists.")
            records.insert_user(connection, record)
        return _user(record)

    def get_user(self, account: str, name: str) -> dict[str, Any]:
        with self._database.read() as connection:
            return _user(self._user(connection, account, name))

    def caller_user(self, principal: Principal) -> dict[str, Any]:
        """GetUser without a name: the caller (root too); a role session must name a user."""
        if principal.kind is PrincipalKind.ASSUMED_ROLE:
            raise ValidationError("Must specify userName when calling with non-User credentials")
        if principal.kind is PrincipalKind.USER:
            return self.get_user(principal.account, principal.arn.rsplit("/", 1)[-1])
        with self._database.read() as connection:
            account = records.get_account(connection, principal.account)
        created = account.created if account else self._clock()
        # AWS answers the root user without a name or path.
        return {"UserId": principal.account, "Arn": principal.arn, "CreateDate": created}

    def list_users(
        self, account: str, prefix: str | None, marker: str | None, max_items: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        limit = checks.max_items(max_items)
        with self._database.read() as connection:
            found = records.list_users(
                connection, account, prefix=prefix or "/", after=checks.after(marker), limit=limit + 1
            )
        page, next_marker = checks.page(found, limit, lambda user: records.key_of(user.name))
        return [_user(user) for user in page], next_marker

    def delete_user(self, account: str, name: str) -> None:
        with self._database.write() as connection:
            user = self._user(connection, account, name)
            owner = records.key_of(user.name)
            if records.list_keys(connection, account, owner):
                raise DeleteConflict("Cannot delete entity, must delete access keys first.")
            if records.list_inline(connection, account, USER, owner):
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            if records.attached(connection, account, USER, owner):
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            records.delete_user(connection, account, name)

    def implicit_user(self, principal: Principal, user_name: str | None) -> str | None:
        """The user an access key operation acts on: the one named, else the caller (None: root)."""
        if user_name:
            return user_name
        if principal.kind is PrincipalKind.ASSUMED_ROLE:
            raise ValidationError("Must specify userName when calling with non-User credentials")
        return principal.arn.rsplit("/", 1)[-1] if principal.kind is PrincipalKind.USER else None

    def _user(self, connection: Connection, account: str, name: str) -> UserRecord:
        user = records.get_user(connection, account, name)
        if user is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        return user

    # --- access keys (``user`` None: the account's root keys) ---

    def create_access_key(self, account: str, user: str | None) -> dict[str, Any]:
        key_id, secret = checks.access_key_id(), checks.secret_access_key()
        with self._database.write() as connection:
            name, owner = self._key_owner(connection, account, user)
            if len(records.list_keys(connection, account, owner)) >= ACCESS_KEYS_PER_USER:
                raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")
            sealed = self._keyring.seal(secret.encode(), f"access-key:{key_id}")
            record = AccessKeyRecord(key_id, account, owner, "Active", sealed, self._clock(), None)
            records.insert_key(connection, record)
        return {**_key(record, name), "SecretAccessKey": secret}

    def list_access_keys(self, account: str, user: str | None) -> list[dict[str, Any]]:
        with self._database.read() as connection:
            name, owner = self._key_owner(connection, account, user)
            return [_key(key, name) for key in records.list_keys(connection, account, owner)]

    def update_access_key(self, account: str, user: str | None, access_key_id: str, status: str) -> None:
        if status not in ("Active", "Inactive"):
            raise ValidationError(
                f"1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Active, Inactive]"
            )
        with self._database.write() as connection:
            self._owned_key(connection, account, user, access_key_id)
            records.set_key_status(connection, access_key_id, status)

    def delete_access_key(self, account: str, user: str | None, access_key_id: str) -> None:
        with self._database.write() as connection:
            self._owned_key(connection, account, user, access_key_id)
            records.delete_key(connection, access_key_id)

    def _key_owner(
        self, connection: Connection, account: str, user: str | None
    ) -> tuple[str | None, str | None]:
        """(the user's name as stored, its key) or (None, None) for root."""
        if user is None:
            return None, None
        record = self._user(connection, account, user)
        return record.name, records.key_of(record.name)

    def _owned_key(
        self, connection: Connection, account: str, user: str | None, key_id: str
    ) -> AccessKeyRecord:
        _, owner = self._key_owner(connection, account, user)
        key = records.get_key(connection, key_id)
        if key is None or key.account != account or key.user != owner:
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        return key

    # --- roles ---

    def create_role(
        self,
        account: str,
        name: str,
        trust_policy: str,
        path: str | None = None,
        description: str | None = None,
        max_session_duration: int | None = None,
    ) -> dict[str, Any]:
        checks.check_name(name, "roleName", 64)
        path = path or "/"
        checks.check_path(path)
        if description is not None:
            checks.check_length(description, "description", 1000)
        duration = DEFAULT_MAX_SESSION if max_session_duration is None else max_session_duration
        _check_max_session(duration)
        self._check_trust_policy(trust_policy)
        record = RoleRecord(
            account, name, path, checks.unique_id("AROA"), trust_policy, duration, description, self._clock()
        )
        with checks.writing(self._database, f"Role with name {name} already exists.") as connection:
            if records.get_role(connection, account, name) is not None:
                raise EntityAlreadyExists(f"Role with name {name} already exists.")
            records.insert_role(connection, record)
        # CreateRole answers without the MaxSessionDuration that GetRole and ListRoles show (AWS's example).
        created = _role(record)
        del created["MaxSessionDuration"]
        return created

    def get_role(self, account: str, name: str) -> dict[str, Any]:
        with self._database.read() as connection:
            return {**_role(self._role(connection, account, name)), "RoleLastUsed": {}}

    def list_roles(
        self, account: str, prefix: str | None, marker: str | None, max_items: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        limit = checks.max_items(max_items)
        with self._database.read() as connection:
            found = records.list_roles(
                connection, account, prefix=prefix or "/", after=checks.after(marker), limit=limit + 1
            )
        page, next_marker = checks.page(found, limit, lambda role: records.key_of(role.name))
        return [_role(role) for role in page], next_marker

    def update_assume_role_policy(self, account: str, name: str, document: str) -> None:
        self._check_trust_policy(document)
        with self._database.write() as connection:
            self._role(connection, account, name)
            records.set_trust_policy(connection, account, name, document)

    def delete_role(self, account: str, name: str) -> None:
        with self._database.write() as connection:
            role = self._role(connection, account, name)
            owner = records.key_of(role.name)
            if records.list_inline(connection, account, ROLE, owner):
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            if records.attached(connection, account, ROLE, owner):
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            records.delete_role(connection, account, name)

    def _role(self, connection: Connection, account: str, name: str) -> RoleRecord:
        role = records.get_role(connection, account, name)
        if role is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        return role

    def _check_trust_policy(self, document: str) -> None:
        if checks.compact_size(document) > checks.TRUST_POLICY_MAX:
            raise LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {checks.TRUST_POLICY_MAX}")
        checks.parse_policy(document, trust=True)

    def _check_identity_policy(self, document: str) -> None:
        checks.check_length(document, "policyDocument", 131072)
        checks.parse_policy(document)

    # --- inline policies (kind USER or ROLE) ---

    def put_inline_policy(self, account: str, kind: str, owner: str, name: str, document: str) -> None:
        checks.check_name(name, "policyName", 128)
        self._check_identity_policy(document)
        with self._database.write() as connection:
            owner_name = self._owner(connection, account, kind, owner)
            owner_key = records.key_of(owner_name)
            others = [
                doc
                for other, doc in records.list_inline(connection, account, kind, owner_key)
                if other != name
            ]
            total = sum(checks.compact_size(doc) for doc in [*others, document])
            maximum = checks.USER_INLINE_TOTAL_MAX if kind == USER else checks.ROLE_INLINE_TOTAL_MAX
            if total > maximum:
                raise LimitExceeded(
                    f"Maximum policy size of {maximum} bytes exceeded for {kind} {owner_name}"
                )
            records.put_inline(connection, account, kind, owner_key, name, document)

    def get_inline_policy(self, account: str, kind: str, owner: str, name: str) -> dict[str, Any]:
        with self._database.read() as connection:
            owner_name = self._owner(connection, account, kind, owner)
            document = records.get_inline(connection, account, kind, records.key_of(owner_name), name)
        if document is None:
            raise NoSuchEntity(f"The {kind} policy with name {name} cannot be found.")
        member = "UserName" if kind == USER else "RoleName"
        return {member: owner_name, "PolicyName": name, "PolicyDocument": checks.encoded(document)}

    def delete_inline_policy(self, account: str, kind: str, owner: str, name: str) -> None:
        with self._database.write() as connection:
            owner_name = self._owner(connection, account, kind, owner)
            if not records.delete_inline(connection, account, kind, records.key_of(owner_name), name):
                raise NoSuchEntity(f"The {kind} policy with name {name} cannot be found.")

    def list_inline_policies(
        self, account: str, kind: str, owner: str, marker: str | None, max_items: int | None
    ) -> tuple[list[str], str | None]:
        limit = checks.max_items(max_items)
        with self._database.read() as connection:
            owner_key = records.key_of(self._owner(connection, account, kind, owner))
            found = records.list_inline(
                connection, account, kind, owner_key, after=checks.after(marker), limit=limit + 1
            )
        page, next_marker = checks.page([name for name, _ in found], limit, lambda name: name)
        return page, next_marker

    def _owner(self, connection: Connection, account: str, kind: str, name: str) -> str:
        """The user's or role's name as stored; NoSuchEntity if there is none."""
        record = (
            self._user(connection, account, name) if kind == USER else self._role(connection, account, name)
        )
        return record.name


def _check_max_session(duration: int) -> None:
    if not 3600 <= duration <= 43200:
        raise ValidationError(
            f"1 validation error detected: Value '{duration}' at 'maxSessionDuration' failed to satisfy "
            "constraint: Member must have value "
            + ("greater than or equal to 3600" if duration < 3600 else "less than or equal to 43200")
        )


def _random_digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _user(record: UserRecord) -> dict[str, Any]:
    return {
        "Path": record.path,
        "UserName": record.name,
        "UserId": record.user_id,
        "Arn": user_arn(record.account, record.path, record.name),
        "CreateDate": record.created,
    }


def _key(record: AccessKeyRecord, user_name: str | None) -> dict[str, Any]:
    key: dict[str, Any] = {
        "AccessKeyId": record.access_key_id,
        "Status": record.status,
        "CreateDate": record.created,
    }
    if user_name is not None:
        key["UserName"] = user_name
    return key


def _role(record: RoleRecord) -> dict[str, Any]:
    role: dict[str, Any] = {
        "Path": record.path,
        "RoleName": record.name,
        "RoleId": record.role_id,
        "Arn": role_arn(record.account, record.path, record.name),
        "CreateDate": record.created,
        "AssumeRolePolicyDocument": checks.encoded(record.trust_policy),
        "MaxSessionDuration": record.max_session_duration,
    }
    if record.description is not None:
        role["Description"] = record.description
    return role
