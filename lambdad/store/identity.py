"""Queries on identities: accounts, IAM users, access keys, roles, inline and managed policies,
attachments and STS sessions. Each takes the transaction's connection; everything is keyed by account.

Secrets arrive here already sealed (``KeyRing.seal``) and leave sealed: this module never sees a plain
secret. Named entities are keyed by their lowercased name (IAM names are case-insensitive) and keep
the name as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from lambdad.store.records import as_utc
from lambdad.store.schema import iam_access_keys as keys
from lambdad.store.schema import iam_accounts as accounts
from lambdad.store.schema import iam_attachments as attachments
from lambdad.store.schema import iam_inline_policies as inline
from lambdad.store.schema import iam_policies as policies
from lambdad.store.schema import iam_policy_versions as versions
from lambdad.store.schema import iam_roles as roles
from lambdad.store.schema import iam_users as users
from lambdad.store.schema import sts_sessions as sessions

USER = "user"
ROLE = "role"


@dataclass(frozen=True)
class AccountRecord:
    id: str
    name: str
    created: datetime


@dataclass(frozen=True)
class UserRecord:
    account: str
    name: str
    path: str
    user_id: str
    created: datetime


@dataclass(frozen=True)
class AccessKeyRecord:
    access_key_id: str
    account: str
    user: str | None  # the user's name key; None: the account's root key
    status: str  # Active | Inactive
    sealed_secret: str
    created: datetime
    last_used: datetime | None


@dataclass(frozen=True)
class RoleRecord:
    account: str
    name: str
    path: str
    role_id: str
    trust_policy: str
    max_session_duration: int
    description: str | None
    created: datetime


@dataclass(frozen=True)
class PolicyRecord:
    """A customer managed policy."""

    account: str
    name: str
    path: str
    policy_id: str
    default_version: str
    next_version: int
    description: str | None
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class PolicyVersionRecord:
    version_id: str
    document: str
    created: datetime


@dataclass(frozen=True)
class SessionRecord:
    access_key_id: str
    account: str
    role_arn: str
    role_id: str
    session_name: str
    sealed_secret: str
    token_sha256: str
    created: datetime
    expires: datetime


def key_of(name: str) -> str:
    """The case-insensitive key of an IAM name."""
    return name.lower()


# --- accounts ---


def insert_account(connection: Connection, record: AccountRecord) -> None:
    connection.execute(insert(accounts).values(id=record.id, name=record.name, created_at=record.created))


def get_account(connection: Connection, account: str) -> AccountRecord | None:
    row = connection.execute(select(accounts).where(accounts.c.id == account)).first()
    return AccountRecord(row.id, row.name, as_utc(row.created_at)) if row else None


def list_accounts(connection: Connection) -> list[AccountRecord]:
    rows = connection.execute(select(accounts).order_by(accounts.c.id))
    return [AccountRecord(row.id, row.name, as_utc(row.created_at)) for row in rows]


# --- users ---


def insert_user(connection: Connection, record: UserRecord) -> None:
    connection.execute(
        insert(users).values(
            account=record.account,
            name_key=key_of(record.name),
            name=record.name,
            path=record.path,
            user_id=record.user_id,
            created_at=record.created,
        )
    )


def get_user(connection: Connection, account: str, name: str) -> UserRecord | None:
    query = select(users).where(users.c.account == account, users.c.name_key == key_of(name))
    row = connection.execute(query).first()
    return _user(row) if row else None


def list_users(
    connection: Connection, account: str, *, prefix: str = "/", after: str | None = None, limit: int
) -> list[UserRecord]:
    """Users whose path starts with ``prefix``, in name order after the name key ``after``."""
    query = select(users).where(users.c.account == account, users.c.path.startswith(prefix, autoescape=True))
    if after is not None:
        query = query.where(users.c.name_key > after)
    query = query.order_by(users.c.name_key).limit(limit)
    return [_user(row) for row in connection.execute(query)]


def delete_user(connection: Connection, account: str, name: str) -> bool:
    query = delete(users).where(users.c.account == account, users.c.name_key == key_of(name))
    return bool(connection.execute(query).rowcount)


def _user(row: Any) -> UserRecord:
    return UserRecord(row.account, row.name, row.path, row.user_id, as_utc(row.created_at))


# --- access keys ---


def insert_key(connection: Connection, record: AccessKeyRecord) -> None:
    connection.execute(
        insert(keys).values(
            access_key_id=record.access_key_id,
            account=record.account,
            user_name_key=record.user,
            status=record.status,
            secret=record.sealed_secret,
            created_at=record.created,
            last_used_at=record.last_used,
        )
    )


def get_key(connection: Connection, access_key_id: str) -> AccessKeyRecord | None:
    row = connection.execute(select(keys).where(keys.c.access_key_id == access_key_id)).first()
    return _key(row) if row else None


def list_keys(connection: Connection, account: str, user: str | None) -> list[AccessKeyRecord]:
    """The keys of a user (by name key), or the account's root keys (``user`` None)."""
    owner = keys.c.user_name_key.is_(None) if user is None else keys.c.user_name_key == user
    query = select(keys).where(keys.c.account == account, owner).order_by(keys.c.created_at)
    return [_key(row) for row in connection.execute(query)]


def set_key_status(connection: Connection, access_key_id: str, status: str) -> bool:
    query = update(keys).where(keys.c.access_key_id == access_key_id).values(status=status)
    return bool(connection.execute(query).rowcount)


def touch_key(connection: Connection, access_key_id: str, when: datetime) -> None:
    """Record the key's last use (AWS's GetAccessKeyLastUsed)."""
    connection.execute(update(keys).where(keys.c.access_key_id == access_key_id).values(last_used_at=when))


def delete_key(connection: Connection, access_key_id: str) -> bool:
    return bool(connection.execute(delete(keys).where(keys.c.access_key_id == access_key_id)).rowcount)


def _key(row: Any) -> AccessKeyRecord:
    last_used = as_utc(row.last_used_at) if row.last_used_at else None
    return AccessKeyRecord(
        row.access_key_id,
        row.account,
        row.user_name_key,
        row.status,
        row.secret,
        as_utc(row.created_at),
        last_used,
    )


# --- roles ---


def insert_role(connection: Connection, record: RoleRecord) -> None:
    connection.execute(
        insert(roles).values(
            account=record.account,
            name_key=key_of(record.name),
            name=record.name,
            path=record.path,
            role_id=record.role_id,
            trust_policy=record.trust_policy,
            max_session_duration=record.max_session_duration,
            description=record.description,
            created_at=record.created,
        )
    )


def get_role(connection: Connection, account: str, name: str) -> RoleRecord | None:
    query = select(roles).where(roles.c.account == account, roles.c.name_key == key_of(name))
    row = connection.execute(query).first()
    return _role(row) if row else None


def list_roles(
    connection: Connection, account: str, *, prefix: str = "/", after: str | None = None, limit: int
) -> list[RoleRecord]:
    query = select(roles).where(roles.c.account == account, roles.c.path.startswith(prefix, autoescape=True))
    if after is not None:
        query = query.where(roles.c.name_key > after)
    query = query.order_by(roles.c.name_key).limit(limit)
    return [_role(row) for row in connection.execute(query)]


def set_trust_policy(connection: Connection, account: str, name: str, document: str) -> bool:
    query = (
        update(roles)
        .where(roles.c.account == account, roles.c.name_key == key_of(name))
        .values(trust_policy=document)
    )
    return bool(connection.execute(query).rowcount)


def delete_role(connection: Connection, account: str, name: str) -> bool:
    query = delete(roles).where(roles.c.account == account, roles.c.name_key == key_of(name))
    return bool(connection.execute(query).rowcount)


def _role(row: Any) -> RoleRecord:
    return RoleRecord(
        row.account,
        row.name,
        row.path,
        row.role_id,
        row.trust_policy,
        row.max_session_duration,
        row.description,
        as_utc(row.created_at),
    )


# --- inline policies (owner_kind USER or ROLE; owner = the owner's name key) ---


def put_inline(connection: Connection, account: str, kind: str, owner: str, name: str, document: str) -> None:
    """Create or replace an inline policy."""
    where = (
        inline.c.account == account,
        inline.c.owner_kind == kind,
        inline.c.owner_key == owner,
        inline.c.name == name,
    )
    if connection.execute(update(inline).where(*where).values(document=document)).rowcount:
        return
    connection.execute(
        insert(inline).values(account=account, owner_kind=kind, owner_key=owner, name=name, document=document)
    )


def get_inline(connection: Connection, account: str, kind: str, owner: str, name: str) -> str | None:
    query = select(inline.c.document).where(
        inline.c.account == account,
        inline.c.owner_kind == kind,
        inline.c.owner_key == owner,
        inline.c.name == name,
    )
    return connection.execute(query).scalar()


def list_inline(
    connection: Connection,
    account: str,
    kind: str,
    owner: str,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> list[tuple[str, str]]:
    """(name, document) of an owner's inline policies, in name order."""
    query = select(inline.c.name, inline.c.document).where(
        inline.c.account == account, inline.c.owner_kind == kind, inline.c.owner_key == owner
    )
    if after is not None:
        query = query.where(inline.c.name > after)
    query = query.order_by(inline.c.name)
    if limit is not None:
        query = query.limit(limit)
    return [(row.name, row.document) for row in connection.execute(query)]


def delete_inline(connection: Connection, account: str, kind: str, owner: str, name: str) -> bool:
    query = delete(inline).where(
        inline.c.account == account,
        inline.c.owner_kind == kind,
        inline.c.owner_key == owner,
        inline.c.name == name,
    )
    return bool(connection.execute(query).rowcount)


# --- customer managed policies and versions ---


def insert_policy(connection: Connection, record: PolicyRecord, document: str) -> None:
    """A new policy with its first version (the default)."""
    connection.execute(
        insert(policies).values(
            account=record.account,
            name_key=key_of(record.name),
            name=record.name,
            path=record.path,
            policy_id=record.policy_id,
            default_version=record.default_version,
            next_version=record.next_version,
            description=record.description,
            created_at=record.created,
            updated_at=record.updated,
        )
    )
    connection.execute(
        insert(versions).values(
            account=record.account,
            policy_key=key_of(record.name),
            version_id=record.default_version,
            document=document,
            created_at=record.created,
        )
    )


def get_policy(connection: Connection, account: str, name: str) -> PolicyRecord | None:
    query = select(policies).where(policies.c.account == account, policies.c.name_key == key_of(name))
    row = connection.execute(query).first()
    return _policy(row) if row else None


def list_policies(
    connection: Connection,
    account: str,
    *,
    prefix: str = "/",
    after: str | None = None,
    limit: int | None = None,
) -> list[PolicyRecord]:
    query = select(policies).where(
        policies.c.account == account, policies.c.path.startswith(prefix, autoescape=True)
    )
    if after is not None:
        query = query.where(policies.c.name_key > after)
    query = query.order_by(policies.c.name_key)
    if limit is not None:
        query = query.limit(limit)
    return [_policy(row) for row in connection.execute(query)]


def delete_policy(connection: Connection, account: str, name: str) -> bool:
    name_key = key_of(name)
    connection.execute(
        delete(versions).where(versions.c.account == account, versions.c.policy_key == name_key)
    )
    query = delete(policies).where(policies.c.account == account, policies.c.name_key == name_key)
    return bool(connection.execute(query).rowcount)


def get_version(
    connection: Connection, account: str, name: str, version_id: str
) -> PolicyVersionRecord | None:
    query = select(versions).where(
        versions.c.account == account,
        versions.c.policy_key == key_of(name),
        versions.c.version_id == version_id,
    )
    row = connection.execute(query).first()
    return PolicyVersionRecord(row.version_id, row.document, as_utc(row.created_at)) if row else None


def list_versions(connection: Connection, account: str, name: str) -> list[PolicyVersionRecord]:
    """A policy's versions, newest first (as ListPolicyVersions answers)."""
    query = select(versions).where(versions.c.account == account, versions.c.policy_key == key_of(name))
    found = [
        PolicyVersionRecord(row.version_id, row.document, as_utc(row.created_at))
        for row in connection.execute(query)
    ]
    return sorted(found, key=lambda version: int(version.version_id[1:]), reverse=True)


def insert_version(connection: Connection, account: str, name: str, version: PolicyVersionRecord) -> None:
    """A new version of a policy; takes the policy's next number (IAM never reuses one)."""
    name_key = key_of(name)
    connection.execute(
        insert(versions).values(
            account=account,
            policy_key=name_key,
            version_id=version.version_id,
            document=version.document,
            created_at=version.created,
        )
    )
    connection.execute(
        update(policies)
        .where(policies.c.account == account, policies.c.name_key == name_key)
        .values(next_version=policies.c.next_version + 1, updated_at=version.created)
    )


def set_default_version(
    connection: Connection, account: str, name: str, version_id: str, when: datetime
) -> None:
    connection.execute(
        update(policies)
        .where(policies.c.account == account, policies.c.name_key == key_of(name))
        .values(default_version=version_id, updated_at=when)
    )


def delete_version(connection: Connection, account: str, name: str, version_id: str) -> bool:
    query = delete(versions).where(
        versions.c.account == account,
        versions.c.policy_key == key_of(name),
        versions.c.version_id == version_id,
    )
    return bool(connection.execute(query).rowcount)


# --- attachments (managed policies attached to users and roles) ---


def attach(
    connection: Connection, account: str, kind: str, owner: str, policy_arn: str, when: datetime
) -> None:
    """Attach (idempotent: attaching twice is one attachment, as on AWS)."""
    exists = connection.execute(
        select(attachments.c.policy_arn).where(
            attachments.c.account == account,
            attachments.c.owner_kind == kind,
            attachments.c.owner_key == owner,
            attachments.c.policy_arn == policy_arn,
        )
    ).first()
    if exists is None:
        connection.execute(
            insert(attachments).values(
                account=account, owner_kind=kind, owner_key=owner, policy_arn=policy_arn, attached_at=when
            )
        )


def detach(connection: Connection, account: str, kind: str, owner: str, policy_arn: str) -> bool:
    query = delete(attachments).where(
        attachments.c.account == account,
        attachments.c.owner_kind == kind,
        attachments.c.owner_key == owner,
        attachments.c.policy_arn == policy_arn,
    )
    return bool(connection.execute(query).rowcount)


def attached(connection: Connection, account: str, kind: str, owner: str) -> list[str]:
    """The ARNs of the managed policies attached to an owner, in ARN order."""
    query = (
        select(attachments.c.policy_arn)
        .where(
            attachments.c.account == account,
            attachments.c.owner_kind == kind,
            attachments.c.owner_key == owner,
        )
        .order_by(attachments.c.policy_arn)
    )
    return list(connection.execute(query).scalars())


def attachment_count(connection: Connection, account: str, policy_arn: str) -> int:
    query = select(func.count()).where(
        attachments.c.account == account, attachments.c.policy_arn == policy_arn
    )
    return int(connection.execute(query).scalar() or 0)


def attachment_counts(connection: Connection, account: str) -> dict[str, int]:
    """Attachments per policy ARN in an account."""
    query = (
        select(attachments.c.policy_arn, func.count())
        .where(attachments.c.account == account)
        .group_by(attachments.c.policy_arn)
    )
    return {row[0]: int(row[1]) for row in connection.execute(query)}


def _policy(row: Any) -> PolicyRecord:
    return PolicyRecord(
        row.account,
        row.name,
        row.path,
        row.policy_id,
        row.default_version,
        row.next_version,
        row.description,
        as_utc(row.created_at),
        as_utc(row.updated_at),
    )


# --- STS sessions ---


def insert_session(connection: Connection, record: SessionRecord) -> None:
    connection.execute(
        insert(sessions).values(
            access_key_id=record.access_key_id,
            account=record.account,
            role_arn=record.role_arn,
            role_id=record.role_id,
            session_name=record.session_name,
            secret=record.sealed_secret,
            token_sha256=record.token_sha256,
            created_at=record.created,
            expires_at=record.expires,
        )
    )


def get_session(connection: Connection, access_key_id: str) -> SessionRecord | None:
    row = connection.execute(select(sessions).where(sessions.c.access_key_id == access_key_id)).first()
    if row is None:
        return None
    return SessionRecord(
        row.access_key_id,
        row.account,
        row.role_arn,
        row.role_id,
        row.session_name,
        row.secret,
        row.token_sha256,
        as_utc(row.created_at),
        as_utc(row.expires_at),
    )


def delete_sessions_expired_before(connection: Connection, when: datetime) -> int:
    """Forget sessions that expired before ``when`` (kept a while after expiry, so that their use still
    answers ExpiredToken rather than an unknown key)."""
    return int(connection.execute(delete(sessions).where(sessions.c.expires_at < when)).rowcount)
