"""Code signing's tables on SQLite and PostgreSQL: profiles, jobs, configs and which function uses one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from lambdad.models import Scope
from lambdad.store import Database
from lambdad.store import functions as function_records
from lambdad.store import signing as records
from lambdad.store.signing import ConfigRecord, JobRecord, ProfileRecord
from tests.store.test_database import REGION, SCOPE, version

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ACCOUNT = "000000000000"
VERSION_ARN = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release/AbCdE12345"
CONFIG_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0"


def _profile() -> ProfileRecord:
    return ProfileRecord(
        account=ACCOUNT,
        region=REGION,
        name="release",
        version="AbCdE12345",
        version_arn=VERSION_ARN,
        platform_id="AWSLambda-SHA384-ECDSA",
        status="Active",
        validity_value=135,
        validity_type="MONTHS",
        private_key="k1:abcd1234:sealed",
        public_key="-----BEGIN PUBLIC KEY-----\n...",
        created_at=NOW,
        tags={"team": "a"},
    )


def test_profiles_and_jobs_round_trip(database: Database) -> None:
    profile = _profile()
    job = JobRecord(
        "job-1",
        ACCOUNT,
        REGION,
        "release",
        "AbCdE12345",
        profile.platform_id,
        "f" * 96,
        f"arn:aws:iam::{ACCOUNT}:root",
        NOW,
        NOW + timedelta(days=30),
    )
    with database.write() as connection:
        records.insert_profile(connection, profile)
        records.insert_job(connection, job)
    revoked = profile.evolve(status="Revoked", revoked_at=NOW, revocation_effective=NOW - timedelta(hours=1))
    with database.write() as connection:
        records.save_profile(connection, revoked)
        records.revoke_job(connection, "job-1", NOW, "me", "leaked")
    with database.read() as connection:
        assert records.get_profile(connection, ACCOUNT, REGION, "release") == revoked
        assert records.profile_by_version_arn(connection, VERSION_ARN) == revoked
        stored = records.get_job(connection, "job-1")
        assert stored is not None and stored.revoked_at == NOW and stored.revocation_reason == "leaked"
        assert stored.expires_at == job.expires_at
    assert revoked.arn == f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release"


def test_a_config_in_use_goes_with_its_function_only(database: Database) -> None:
    config = ConfigRecord(CONFIG_ARN, REGION, "csc-0123456789abcdef0", "", [VERSION_ARN], "Enforce", NOW)
    with database.write() as connection:
        records.insert_config(connection, config)
        function_records.insert_function(connection, SCOPE, version("signed"), NOW)
        records.set_config_of(connection, SCOPE, "signed", CONFIG_ARN)
    with database.read() as connection:
        assert records.get_config(connection, CONFIG_ARN) == config
        assert records.list_configs(connection, SCOPE, after=None, limit=10) == [config]
        assert records.list_configs(connection, Scope("111111111111", REGION), after=None, limit=10) == []
        assert records.functions_using(connection, CONFIG_ARN) == [(SCOPE, "signed")]
        assert records.count_using(connection, CONFIG_ARN) == 1
    # The database refuses to drop a config a function uses.
    with pytest.raises(IntegrityError), database.write() as connection:
        records.delete_config(connection, CONFIG_ARN)
    with database.write() as connection:
        function_records.delete_function(connection, SCOPE, "signed")
    with database.read() as connection:
        assert records.count_using(connection, CONFIG_ARN) == 0
    with database.write() as connection:
        assert records.delete_config(connection, CONFIG_ARN)
