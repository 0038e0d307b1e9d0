"""Queries on code signing: AWS Signer's signing profiles and jobs, Lambda's code signing configs and the
functions that use them. Each takes the transaction's connection."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import code_signing_configs as configs
from lambdad.store.schema import function_code_signing as uses
from lambdad.store.schema import signing_jobs as jobs
from lambdad.store.schema import signing_profiles as profiles
from lambdad.store.scoping import in_scope, scope_of, scoped


@dataclass(frozen=True)
class ProfileRecord:
    """A signing profile (its one version); ``private_key`` is sealed with the key ring."""

    account: str
    region: str
    name: str
    version: str
    version_arn: str
    platform_id: str
    status: str  # Active | Canceled | Revoked
    validity_value: int
    validity_type: str
    private_key: str
    public_key: str
    created_at: datetime
    tags: dict[str, str]
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revocation_reason: str | None = None
    revocation_effective: datetime | None = None

    @property
    def arn(self) -> str:
        return self.version_arn.rsplit("/", 1)[0]

    def evolve(self, **changes: Any) -> ProfileRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class JobRecord:
    """One signature made with a profile."""

    job_id: str
    account: str
    region: str
    profile_name: str
    profile_version: str
    platform_id: str
    digest: str
    requested_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True)
class ConfigRecord:
    """A Lambda code signing config."""

    arn: str
    region: str
    config_id: str
    description: str
    allowed_publishers: list[str]
    untrusted_artifact: str  # Warn | Enforce
    last_modified: datetime

    @property
    def account(self) -> str:
        """The account that owns the config (its ARN's)."""
        return self.arn.split(":")[4]


# --- profiles --------------------------------------------------------------------------------------


def insert_profile(connection: Connection, record: ProfileRecord) -> None:
    connection.execute(insert(profiles).values(**_profile_values(record)))


def save_profile(connection: Connection, record: ProfileRecord) -> None:
    key = (profiles.c.account == record.account, profiles.c.region == record.region)
    connection.execute(
        update(profiles).where(*key, profiles.c.name == record.name).values(**_profile_values(record))
    )


def get_profile(connection: Connection, account: str, region: str, name: str) -> ProfileRecord | None:
    query = select(profiles).where(
        profiles.c.account == account, profiles.c.region == region, profiles.c.name == name
    )
    row = connection.execute(query).first()
    return _profile(row) if row else None


def profile_by_version_arn(connection: Connection, version_arn: str) -> ProfileRecord | None:
    row = connection.execute(select(profiles).where(profiles.c.version_arn == version_arn)).first()
    return _profile(row) if row else None


def list_profiles(
    connection: Connection, account: str, region: str, *, after: str | None, limit: int
) -> list[ProfileRecord]:
    query = select(profiles).where(profiles.c.account == account, profiles.c.region == region)
    if after is not None:
        query = query.where(profiles.c.name > after)
    return [_profile(row) for row in connection.execute(query.order_by(profiles.c.name).limit(limit))]


def _profile_values(record: ProfileRecord) -> dict[str, Any]:
    return {
        "account": record.account,
        "region": record.region,
        "name": record.name,
        "version": record.version,
        "version_arn": record.version_arn,
        "platform_id": record.platform_id,
        "status": record.status,
        "validity_value": record.validity_value,
        "validity_type": record.validity_type,
        "private_key": record.private_key,
        "public_key": record.public_key,
        "created_at": record.created_at,
        "tags": record.tags,
        "revoked_at": record.revoked_at,
        "revoked_by": record.revoked_by,
        "revocation_reason": record.revocation_reason,
        "revocation_effective": record.revocation_effective,
    }


def _maybe_utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _profile(row: Any) -> ProfileRecord:
    return ProfileRecord(
        account=row.account,
        region=row.region,
        name=row.name,
        version=row.version,
        version_arn=row.version_arn,
        platform_id=row.platform_id,
        status=row.status,
        validity_value=row.validity_value,
        validity_type=row.validity_type,
        private_key=row.private_key,
        public_key=row.public_key,
        created_at=as_utc(row.created_at),
        tags=dict(row.tags or {}),
        revoked_at=_maybe_utc(row.revoked_at),
        revoked_by=row.revoked_by,
        revocation_reason=row.revocation_reason,
        revocation_effective=_maybe_utc(row.revocation_effective),
    )


# --- jobs ------------------------------------------------------------------------------------------


def insert_job(connection: Connection, record: JobRecord) -> None:
    connection.execute(
        insert(jobs).values(
            job_id=record.job_id,
            account=record.account,
            region=record.region,
            profile_name=record.profile_name,
            profile_version=record.profile_version,
            platform_id=record.platform_id,
            digest=record.digest,
            requested_by=record.requested_by,
            created_at=record.created_at,
            expires_at=record.expires_at,
        )
    )


def get_job(connection: Connection, job_id: str) -> JobRecord | None:
    row = connection.execute(select(jobs).where(jobs.c.job_id == job_id)).first()
    return _job(row) if row else None


def revoke_job(connection: Connection, job_id: str, when: datetime, by: str, reason: str) -> None:
    connection.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .values(revoked_at=when, revoked_by=by, revocation_reason=reason)
    )


def list_jobs(connection: Connection, account: str, region: str, *, limit: int) -> list[JobRecord]:
    query = (
        select(jobs)
        .where(jobs.c.account == account, jobs.c.region == region)
        .order_by(jobs.c.created_at.desc())
        .limit(limit)
    )
    return [_job(row) for row in connection.execute(query)]


def _job(row: Any) -> JobRecord:
    return JobRecord(
        job_id=row.job_id,
        account=row.account,
        region=row.region,
        profile_name=row.profile_name,
        profile_version=row.profile_version,
        platform_id=row.platform_id,
        digest=row.digest,
        requested_by=row.requested_by,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        revoked_at=_maybe_utc(row.revoked_at),
        revoked_by=row.revoked_by,
        revocation_reason=row.revocation_reason,
    )


# --- code signing configs --------------------------------------------------------------------------


def insert_config(connection: Connection, record: ConfigRecord) -> None:
    connection.execute(insert(configs).values(**_config_values(record)))


def save_config(connection: Connection, record: ConfigRecord) -> None:
    connection.execute(update(configs).where(configs.c.arn == record.arn).values(**_config_values(record)))


def get_config(connection: Connection, arn: str) -> ConfigRecord | None:
    row = connection.execute(select(configs).where(configs.c.arn == arn)).first()
    return _config(row) if row else None


def delete_config(connection: Connection, arn: str) -> bool:
    return bool(connection.execute(delete(configs).where(configs.c.arn == arn)).rowcount)


def list_configs(
    connection: Connection, scope: Scope, *, after: str | None, limit: int
) -> list[ConfigRecord]:
    prefix = f"arn:aws:lambda:{scope.region}:{scope.account}:code-signing-config:"
    query = select(configs).where(in_scope(configs, scope), configs.c.arn.startswith(prefix))
    if after is not None:
        query = query.where(configs.c.arn > after)
    return [_config(row) for row in connection.execute(query.order_by(configs.c.arn).limit(limit))]


def _config_values(record: ConfigRecord) -> dict[str, Any]:
    return {
        "arn": record.arn,
        "account": record.account,
        "region": record.region,
        "config_id": record.config_id,
        "description": record.description,
        "allowed_publishers": list(record.allowed_publishers),
        "untrusted_artifact": record.untrusted_artifact,
        "last_modified": record.last_modified,
    }


def _config(row: Any) -> ConfigRecord:
    return ConfigRecord(
        arn=row.arn,
        region=row.region,
        config_id=row.config_id,
        description=row.description,
        allowed_publishers=list(row.allowed_publishers),
        untrusted_artifact=row.untrusted_artifact,
        last_modified=as_utc(row.last_modified),
    )


# --- which function uses which config --------------------------------------------------------------


def config_of(connection: Connection, scope: Scope, function_name: str) -> str | None:
    query = select(uses.c.config_arn).where(in_scope(uses, scope), uses.c.function_name == function_name)
    return connection.execute(query).scalar()


def set_config_of(connection: Connection, scope: Scope, function_name: str, arn: str) -> None:
    key = (in_scope(uses, scope), uses.c.function_name == function_name)
    if connection.execute(update(uses).where(*key).values(config_arn=arn)).rowcount:
        return
    connection.execute(insert(uses).values(**scoped(scope), function_name=function_name, config_arn=arn))


def remove_config_of(connection: Connection, scope: Scope, function_name: str) -> None:
    connection.execute(delete(uses).where(in_scope(uses, scope), uses.c.function_name == function_name))


def functions_using(
    connection: Connection, arn: str, *, after: str | None = None, limit: int | None = None
) -> list[tuple[Scope, str]]:
    """(scope, function name) of the functions that use config ``arn``, in name order."""
    query = select(uses.c.account, uses.c.region, uses.c.function_name).where(uses.c.config_arn == arn)
    if after is not None:
        query = query.where(uses.c.function_name > after)
    query = query.order_by(uses.c.function_name)
    if limit is not None:
        query = query.limit(limit)
    return [(scope_of(row), row.function_name) for row in connection.execute(query)]


def count_using(connection: Connection, arn: str) -> int:
    return int(connection.execute(select(func.count()).where(uses.c.config_arn == arn)).scalar() or 0)
