"""Signing profiles and the deployment check on a real SQLite store, with a clock the test moves:
signatures expire when their profile's SignatureValidityPeriod says; keys are sealed at rest."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lambdad import signatures
from lambdad.errors import CodeVerificationFailedException
from lambdad.models import Scope
from lambdad.services.activation import Activator
from lambdad.services.changes import FunctionChanges
from lambdad.services.code_signing import CodeSigningService
from lambdad.services.functions import FunctionService
from lambdad.services.signing import SigningService, valid_until
from lambdad.store import CodeStore, Database
from lambdad.store.keyring import KeyRing, KeyRingError
from lambdad.store.schema import signing_profiles
from tests.support import ROLE, make_zip

SCOPE = Scope("000000000000", "us-east-1")
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Parts:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
        self.database.migrate()
        self.ring = KeyRing([secrets.token_bytes(32)])
        self.signing = SigningService(self.database, self.ring, self.clock)
        self.code_signing = CodeSigningService(self.database, self.clock)
        self.activator = Activator(self.database, FunctionChanges(), None)
        self.functions = FunctionService(
            self.database,
            CodeStore(tmp_path / "code"),
            self.activator,
            FunctionChanges(),
            code_storage_limit=10**9,
            code_signing=self.code_signing,
        )

    def signed(self, profile: str, package: bytes) -> bytes:
        payload = json.dumps({"digest": {"SHA-384": signatures.digest(package)}}).encode()
        params = {"profileName": profile, "payload": payload, "payloadFormat": signatures.PAYLOAD_FORMAT}
        answer = self.signing.sign_payload(SCOPE, params, "arn:aws:iam::000000000000:root")
        return signatures.embed(package, signatures.Envelope.from_bytes(answer.envelope))

    def create(self, name: str, config_arn: str, package: bytes) -> Any:
        params = {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Role": ROLE,
            "Handler": "handler.handler",
            "Code": {"ZipFile": package},
            "CodeSigningConfigArn": config_arn,
        }
        return self.functions.create(SCOPE, params)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    built = Parts(tmp_path)
    yield built
    built.activator.close()
    built.database.dispose()


def _config(parts: Parts, policy: str, version_arn: str) -> str:
    params = {
        "AllowedPublishers": {"SigningProfileVersionArns": [version_arn]},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": policy},
    }
    return parts.code_signing.create(SCOPE, params).arn


def test_a_signature_expires_with_its_validity_period(parts: Parts) -> None:
    profile = parts.signing.put_profile(
        SCOPE,
        {
            "profileName": "oneday",
            "platformId": signatures.PLATFORM_ID,
            "signatureValidityPeriod": {"value": 1, "type": "DAYS"},
        },
    )
    enforce = _config(parts, "Enforce", profile.version_arn)
    warn = _config(parts, "Warn", profile.version_arn)
    package = parts.signed("oneday", make_zip())
    manifest = signatures.extract(package)
    assert manifest is not None and manifest.manifest.expires_at == int((T0 + timedelta(days=1)).timestamp())

    parts.clock.now = T0 + timedelta(hours=23)
    parts.create("fresh", enforce, package)
    parts.clock.now = T0 + timedelta(days=1, seconds=1)
    with pytest.raises(CodeVerificationFailedException):
        parts.create("expired", enforce, package)
    parts.create("expired-warn", warn, package)  # Warn deploys it, with a warning


def test_private_keys_are_sealed_for_their_profile(parts: Parts) -> None:
    profile = parts.signing.put_profile(
        SCOPE, {"profileName": "sealed", "platformId": signatures.PLATFORM_ID}
    )
    with parts.database.read() as connection:
        stored = connection.execute(select(signing_profiles.c.private_key)).scalar_one()
    assert stored.startswith("k1:") and "PRIVATE" not in stored
    purpose = f"signing-profile:{profile.version_arn}"
    key = parts.ring.open_sealed(stored, purpose)
    assert signatures.public_key_pem(key).decode() == profile.public_key
    with pytest.raises(KeyRingError):
        KeyRing([secrets.token_bytes(32)]).open_sealed(stored, purpose)
    with pytest.raises(KeyRingError):
        parts.ring.open_sealed(stored, "signing-profile:another")


def test_validity_periods_count_calendar_months_and_years() -> None:
    start = datetime(2026, 1, 31, tzinfo=UTC)
    assert valid_until(start, 1, "MONTHS") == datetime(2026, 2, 28, tzinfo=UTC)
    assert valid_until(start, 135, "MONTHS") == datetime(2037, 4, 30, tzinfo=UTC)
    assert valid_until(start, 2, "YEARS") == datetime(2028, 1, 31, tzinfo=UTC)
    assert valid_until(start, 10, "DAYS") == datetime(2026, 2, 10, tzinfo=UTC)
