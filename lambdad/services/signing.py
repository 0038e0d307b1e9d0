"""AWS Signer's API for Lambda code: signing profiles with real ECDSA P-384 keys, signatures (signing
jobs), revocation. The private keys never leave the server: they are sealed with the key ring in the
store and opened only to sign a package digest (SignPayload, which ``lambdad sign`` calls).

Every profile has the one platform Lambda uses, ``AWSLambda-SHA384-ECDSA``, and one version (AWS makes
a profile's name unique for good: a canceled profile keeps it). StartSigningJob reads and writes S3,
which lambdad does not have: it is answered with ValidationException saying to use ``lambdad sign``.
"""

from __future__ import annotations

import calendar
import json
import logging
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdad import signatures
from lambdad.errors import (
    AccessDeniedException,
    NotFoundException,
    ResourceNotFoundException,
    ValidationException,
)
from lambdad.models import Scope, utcnow
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.store import Database
from lambdad.store import signing as records
from lambdad.store.keyring import KeyRing
from lambdad.store.signing import JobRecord, ProfileRecord

log = logging.getLogger(__name__)

ACTIVE, CANCELED, REVOKED = "Active", "Canceled", "Revoked"
#: AWS's default SignatureValidityPeriod.
DEFAULT_VALIDITY: dict[str, Any] = {"value": 135, "type": "MONTHS"}
#: The platform as GetSigningPlatform describes it on AWS.
LAMBDA_PLATFORM: dict[str, Any] = {
    "platformId": signatures.PLATFORM_ID,
    "displayName": "AWS Lambda",
    "partner": "AWSLambda",
    "target": "AWSLambda",
    "category": "AWS",
    "signingConfiguration": {
        "encryptionAlgorithmOptions": {"allowedValues": ["ECDSA"], "defaultValue": "ECDSA"},
        "hashAlgorithmOptions": {"allowedValues": ["SHA384"], "defaultValue": "SHA384"},
    },
    "signingImageFormat": {"supportedFormats": ["JSONDetached"], "defaultFormat": "JSONDetached"},
    "maxSizeInMB": 250,
    "revocationSupported": True,
}
_VERSION_ALPHABET = string.ascii_letters + string.digits


def profile_arn(scope: Scope, name: str) -> str:
    """``arn:aws:signer:REGION:ACCOUNT:/signing-profiles/NAME``."""
    return f"arn:aws:signer:{scope.region}:{scope.account}:/signing-profiles/{name}"


def job_arn(job: JobRecord) -> str:
    return f"arn:aws:signer:{job.region}:{job.account}:/signing-jobs/{job.job_id}"


def valid_until(start: datetime, value: int, unit: str) -> datetime:
    """``start`` plus a SignatureValidityPeriod (calendar months and years, as a person counts them)."""
    if unit == "DAYS":
        return start + timedelta(days=value)
    months = value * (12 if unit == "YEARS" else 1)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class ProfilePage:
    profiles: list[ProfileRecord]
    next_token: str | None


@dataclass(frozen=True)
class Signed:
    """SignPayload's answer."""

    job: JobRecord
    envelope: bytes
    metadata: dict[str, str]


class SigningService:
    """The Signer operations; ``clock`` is the time signatures are dated and checked with."""

    def __init__(self, database: Database, keyring: KeyRing, clock: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._keyring = keyring
        self._clock = clock

    # --- profiles --------------------------------------------------------------------------------

    def put_profile(self, scope: Scope, params: dict[str, Any]) -> ProfileRecord:
        name = params["profileName"]
        platform = params["platformId"]
        if platform != signatures.PLATFORM_ID:
            raise ValidationException(
                f"lambdad signs Lambda code only: platformId must be {signatures.PLATFORM_ID}, not {platform}"
            )
        validity = params.get("signatureValidityPeriod") or DEFAULT_VALIDITY
        value: int = validity.get("value", DEFAULT_VALIDITY["value"])
        unit: str = validity.get("type", "MONTHS")
        if value < 1:
            raise ValidationException("signatureValidityPeriod value must be at least 1")
        version = "".join(secrets.choice(_VERSION_ALPHABET) for _ in range(10))
        arn = profile_arn(scope, name)
        version_arn = f"{arn}/{version}"
        private_key = signatures.new_private_key()
        record = ProfileRecord(
            account=scope.account,
            region=scope.region,
            name=name,
            version=version,
            version_arn=version_arn,
            platform_id=platform,
            status=ACTIVE,
            validity_value=value,
            validity_type=unit,
            private_key=self._keyring.seal(private_key, _purpose(version_arn)),
            public_key=signatures.public_key_pem(private_key).decode(),
            created_at=self._clock(),
            tags=dict(params.get("tags") or {}),
        )
        with self._database.write() as connection:
            if records.get_profile(connection, scope.account, scope.region, name) is not None:
                # Names are never reused, not even a canceled profile's (as on AWS).
                raise ValidationException(f"Profile with name {name} already exists")
            records.insert_profile(connection, record)
        return record

    def get_profile(self, scope: Scope, name: str, owner: str | None = None) -> ProfileRecord:
        with self._database.read() as connection:
            return self._profile(connection, scope, name, owner)

    def list_profiles(self, scope: Scope, params: dict[str, Any]) -> ProfilePage:
        limit = params.get("maxResults") or 100
        after = decode_marker(params["nextToken"], 1)[0] if params.get("nextToken") else None
        statuses = set(params.get("statuses") or ())
        include_canceled = bool(params.get("includeCanceled")) or CANCELED in statuses
        with self._database.read() as connection:
            found = records.list_profiles(connection, scope.account, scope.region, after=after, limit=10_000)
        kept = [
            p
            for p in found
            if (include_canceled or p.status != CANCELED)
            and (not statuses or p.status in statuses)
            and (not params.get("platformId") or p.platform_id == params["platformId"])
        ]
        if len(kept) <= limit:
            return ProfilePage(kept, None)
        return ProfilePage(kept[:limit], encode_marker(kept[limit - 1].name))

    def cancel_profile(self, scope: Scope, name: str) -> None:
        with self._database.write() as connection:
            profile = self._profile(connection, scope, name)
            if profile.status == ACTIVE:
                records.save_profile(connection, profile.evolve(status=CANCELED))

    def revoke_profile(self, scope: Scope, params: dict[str, Any], principal: str) -> None:
        name, version = params["profileName"], params["profileVersion"]
        effective = _datetime(params["effectiveTime"])
        with self._database.write() as connection:
            profile = self._profile(connection, scope, name)
            if profile.version != version:
                raise ResourceNotFoundException(f"Profile version {version} of {name} not found.")
            if profile.status == REVOKED:
                raise ValidationException(f"Profile {name} version {version} is already revoked.")
            records.save_profile(
                connection,
                profile.evolve(
                    status=REVOKED,
                    revoked_at=self._clock(),
                    revoked_by=principal,
                    revocation_reason=params["reason"],
                    revocation_effective=effective,
                ),
            )

    # --- signatures ------------------------------------------------------------------------------

    def sign_payload(self, scope: Scope, params: dict[str, Any], principal: str) -> Signed:
        """Sign a package digest (``signatures.PAYLOAD_FORMAT``) with a profile: a signing job whose
        envelope ``lambdad sign`` puts in the package."""
        if params.get("payloadFormat") != signatures.PAYLOAD_FORMAT:
            raise ValidationException(
                f"payloadFormat must be {signatures.PAYLOAD_FORMAT} for platform {signatures.PLATFORM_ID}"
            )
        digest = _digest_of(params["payload"])
        now = self._clock()
        with self._database.write() as connection:
            profile = self._profile(connection, scope, params["profileName"], params.get("profileOwner"))
            if profile.status != ACTIVE:
                raise ValidationException(
                    f"Profile {profile.name} is {profile.status.lower()}: it cannot sign any more."
                )
            job = JobRecord(
                job_id=str(uuid.uuid4()),
                account=profile.account,
                region=profile.region,
                profile_name=profile.name,
                profile_version=profile.version,
                platform_id=profile.platform_id,
                digest=digest,
                requested_by=principal,
                created_at=now,
                expires_at=valid_until(now, profile.validity_value, profile.validity_type),
            )
            records.insert_job(connection, job)
        manifest = signatures.Manifest(
            digest=digest,
            profile_version_arn=profile.version_arn,
            job_id=job.job_id,
            job_owner=job.account,
            signed_at=int(job.created_at.timestamp()),
            expires_at=int(job.expires_at.timestamp()),
        )
        private_key = self._keyring.open_sealed(profile.private_key, _purpose(profile.version_arn))
        envelope = signatures.sign(manifest, private_key).to_bytes()
        log.info("signing job %s: %s signed digest %s", job.job_id, profile.version_arn, digest[:16])
        metadata = {
            "signingProfileVersionArn": profile.version_arn,
            "signatureExpiresAt": job.expires_at.isoformat(),
        }
        return Signed(job, envelope, metadata)

    def describe_job(self, scope: Scope, job_id: str) -> JobRecord:
        with self._database.read() as connection:
            job = records.get_job(connection, job_id)
        if job is None or job.account != scope.account:
            raise ResourceNotFoundException(f"Signing job {job_id} not found.")
        return job

    def list_jobs(self, scope: Scope) -> list[JobRecord]:
        with self._database.read() as connection:
            return records.list_jobs(connection, scope.account, scope.region, limit=1000)

    def revoke_signature(self, scope: Scope, params: dict[str, Any], principal: str) -> None:
        job_id = params["jobId"]
        with self._database.write() as connection:
            job = records.get_job(connection, job_id)
            # Only the account that signed revokes its signatures.
            if (
                job is None
                or job.account != scope.account
                or params.get("jobOwner", job.account) != job.account
            ):
                raise ResourceNotFoundException(f"Signing job {job_id} not found.")
            if job.revoked_at is None:
                records.revoke_job(connection, job_id, self._clock(), principal, params["reason"])

    def start_signing_job(self, scope: Scope, params: dict[str, Any]) -> None:
        """lambdad has no S3 to read the source from: after the profile checks AWS makes, the answer
        says how to sign with lambdad."""
        profile = self.get_profile(scope, params["profileName"], params.get("profileOwner"))
        if profile.status != ACTIVE:
            raise ValidationException(f"Profile {profile.name} is {profile.status.lower()}.")
        raise ValidationException(
            "lambdad has no S3 to read the source object from or write the signed object to: sign the zip "
            "with `lambdad sign --profile NAME IN.zip`, which signs through SignPayload"
        )

    def revoked_entities(self, params: dict[str, Any]) -> list[str]:
        """GetRevocationStatus: which of the signature's profile version and signing job are revoked
        for a signature made at ``signatureTimestamp``."""
        signed_at = _datetime(params["signatureTimestamp"])
        revoked: list[str] = []
        with self._database.read() as connection:
            profile = records.profile_by_version_arn(connection, params["profileVersionArn"])
            job = records.get_job(connection, params["jobArn"].rsplit("/", 1)[-1])
        if profile is not None and profile.status == REVOKED:
            effective = profile.revocation_effective
            if effective is None or signed_at >= effective:
                revoked.append(profile.version_arn)
        if job is not None and job.revoked_at is not None:
            revoked.append(params["jobArn"])
        return revoked

    # --- platforms -------------------------------------------------------------------------------

    def platform(self, platform_id: str) -> dict[str, Any]:
        if platform_id != signatures.PLATFORM_ID:
            raise ResourceNotFoundException(f"Platform {platform_id} not found.")
        return dict(LAMBDA_PLATFORM)

    # --- tags ------------------------------------------------------------------------------------

    def tag(self, scope: Scope, arn: str, tags: dict[str, str]) -> None:
        with self._database.write() as connection:
            profile = self._tagged(connection, scope, arn)
            records.save_profile(connection, profile.evolve(tags={**profile.tags, **tags}))

    def untag(self, scope: Scope, arn: str, keys: list[str]) -> None:
        with self._database.write() as connection:
            profile = self._tagged(connection, scope, arn)
            kept = {k: v for k, v in profile.tags.items() if k not in set(keys)}
            records.save_profile(connection, profile.evolve(tags=kept))

    def tags(self, scope: Scope, arn: str) -> dict[str, str]:
        with self._database.read() as connection:
            return self._tagged(connection, scope, arn).tags

    # --- helpers ---------------------------------------------------------------------------------

    def _profile(self, connection: Any, scope: Scope, name: str, owner: str | None = None) -> ProfileRecord:
        if owner not in (None, scope.account):
            # Another account's profile needs its profile permissions (AddProfilePermission), which
            # lambdad does not keep yet: nobody signs with, or reads, another account's profile.
            raise AccessDeniedException(
                f"Account {scope.account} has no permission on the signing profile {name} of account {owner}."
            )
        profile = records.get_profile(connection, scope.account, scope.region, name)
        if profile is None:
            raise ResourceNotFoundException(f"Profile with name {name} not found.")
        return profile

    def _tagged(self, connection: Any, scope: Scope, arn: str) -> ProfileRecord:
        prefix = f"arn:aws:signer:{scope.region}:{scope.account}:/signing-profiles/"
        name = arn[len(prefix) :].split("/", 1)[0] if arn.startswith(prefix) else ""
        profile = records.get_profile(connection, scope.account, scope.region, name) if name else None
        if profile is None:
            raise NotFoundException(f"Resource {arn} not found.")
        return profile


def _purpose(version_arn: str) -> str:
    """The key ring purpose a profile's private key is sealed for: it opens for that profile only."""
    return f"signing-profile:{version_arn}"


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
            # A query string carries ISO 8601 (GetRevocationStatus's signatureTimestamp).
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationException(f"{value!r} is not a timestamp") from error


def _digest_of(payload: bytes) -> str:
    """The SHA-384 digest (hex) a ``PAYLOAD_FORMAT`` payload carries."""
    try:
        document = json.loads(payload)
        digest = document["digest"]["SHA-384"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationException('payload must be {"digest": {"SHA-384": "<96 hex digits>"}}') from error
    if not isinstance(digest, str) or len(digest) != 96 or any(c not in "0123456789abcdef" for c in digest):
        raise ValidationException("payload digest must be a SHA-384 digest in 96 lower-case hex digits")
    return digest
