"""Lambda's code signing configs, which function uses which, and the check of a package's signature
when code is deployed to a function that has one (CreateFunction, UpdateFunctionCode).

The check is AWS's four (Lambda's "Signature validation"):

- integrity: the signature holds under the signing profile's key and the package's digest is the one
  signed; a package whose signature fails it is refused whatever the policy
  (InvalidCodeSignatureException);
- mismatch: signed by a profile version the config's AllowedPublishers name (a profile ARN without its
  version allows any version of it); an unsigned package is untrusted the same way;
- expiry: the signature's validity (the profile's SignatureValidityPeriod from signing) has not ended;
- revocation: neither the signature (RevokeSignature) nor the profile (RevokeSigningProfile, for
  signatures made from its effective time on; CancelSigningProfile) is revoked.

An untrusted package under ``Warn`` is deployed with a warning in the server log (AWS writes a
CloudWatch metric and a CloudTrail record); under ``Enforce`` it is refused
(CodeVerificationFailedException). Layers are not checked (lambdad does not yet check a function's
layers against its config), and PublishLayerVersion checks nothing, as on AWS (a layer has no config).
"""

from __future__ import annotations

import builtins
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from lambdad import signatures
from lambdad.errors import (
    CodeSigningConfigNotFoundException,
    CodeVerificationFailedException,
    InvalidCodeSignatureException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import Scope, utcnow
from lambdad.services import limits
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.services.resolution import unqualified
from lambdad.store import Database
from lambdad.store import functions as function_records
from lambdad.store import signing as records
from lambdad.store.signing import ConfigRecord

log = logging.getLogger(__name__)

WARN, ENFORCE = "Warn", "Enforce"


def _not_found(arn: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"The Lambda code signing configuration {arn} can not be found.")


def _config_not_found(arn: str) -> CodeSigningConfigNotFoundException:
    return CodeSigningConfigNotFoundException(
        "The code signing configuration cannot be found. Check that the provided configuration is not "
        f"deleted: {arn}."
    )


@dataclass(frozen=True)
class ConfigPage:
    configs: list[ConfigRecord]
    next_marker: str | None


class CodeSigningService:
    """Code signing configs and the deployment check; ``clock`` dates the expiry check."""

    def __init__(self, database: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._clock = clock

    # --- configs ---------------------------------------------------------------------------------

    def create(self, scope: Scope, params: dict[str, Any]) -> ConfigRecord:
        config_id = "csc-" + secrets.token_hex(9)[:17]
        record = ConfigRecord(
            arn=f"arn:aws:lambda:{scope.region}:{scope.account}:code-signing-config:{config_id}",
            region=scope.region,
            config_id=config_id,
            description=params.get("Description") or "",
            allowed_publishers=list(params["AllowedPublishers"]["SigningProfileVersionArns"]),
            untrusted_artifact=(params.get("CodeSigningPolicies") or {}).get(
                "UntrustedArtifactOnDeployment", WARN
            ),
            last_modified=utcnow(),
        )
        with self._database.write() as connection:
            records.insert_config(connection, record)
        return record

    def get(self, scope: Scope, arn: str) -> ConfigRecord:
        with self._database.read() as connection:
            return self._config(connection, scope, arn)

    def update(self, scope: Scope, params: dict[str, Any]) -> ConfigRecord:
        arn = params["CodeSigningConfigArn"]
        with self._database.write() as connection:
            record = self._config(connection, scope, arn)
            changes: dict[str, Any] = {}
            if "Description" in params:
                changes["description"] = params["Description"] or ""
            if params.get("AllowedPublishers"):
                changes["allowed_publishers"] = list(params["AllowedPublishers"]["SigningProfileVersionArns"])
            policy = (params.get("CodeSigningPolicies") or {}).get("UntrustedArtifactOnDeployment")
            if policy:
                changes["untrusted_artifact"] = policy
            if changes:
                record = _evolve(record, last_modified=utcnow(), **changes)
                records.save_config(connection, record)
        return record

    def delete(self, scope: Scope, arn: str) -> None:
        with self._database.write() as connection:
            self._config(connection, scope, arn)
            if records.count_using(connection, arn):
                raise ResourceConflictException(
                    f"The code signing configuration {arn} cannot be deleted because it is used by one "
                    "or more functions."
                )
            records.delete_config(connection, arn)

    def list(self, scope: Scope, marker: str | None, max_items: int | None) -> ConfigPage:
        limit = max_items or limits.LIST_PAGE_DEFAULT
        after = decode_marker(marker, 1)[0] if marker else None
        with self._database.read() as connection:
            found = records.list_configs(connection, scope, after=after, limit=limit + 1)
        if len(found) <= limit:
            return ConfigPage(found, None)
        return ConfigPage(found[:limit], encode_marker(found[limit - 1].arn))

    def functions_using(
        self, scope: Scope, arn: str, marker: str | None, max_items: int | None
    ) -> tuple[builtins.list[str], str | None]:
        limit = max_items or limits.LIST_PAGE_DEFAULT
        after = decode_marker(marker, 1)[0] if marker else None
        with self._database.read() as connection:
            self._config(connection, scope, arn)
            found = records.functions_using(connection, arn, after=after, limit=limit + 1)
        arns = [scope.function_arn(name) for _, name in found[:limit]]
        return arns, (encode_marker(found[limit - 1][1]) if len(found) > limit else None)

    # --- a function's config ---------------------------------------------------------------------

    def put_for_function(self, scope: Scope, function_name: str, arn: str) -> str:
        name = self._function(scope, function_name)
        with self._database.write() as connection:
            self._require_function(connection, scope, name)
            if records.get_config(connection, arn) is None or not _in_scope(arn, scope):
                raise _config_not_found(arn)
            records.set_config_of(connection, scope, name, arn)
        return name

    def get_for_function(self, scope: Scope, function_name: str) -> tuple[str, str | None]:
        name = self._function(scope, function_name)
        with self._database.read() as connection:
            self._require_function(connection, scope, name)
            return name, records.config_of(connection, scope, name)

    def delete_for_function(self, scope: Scope, function_name: str) -> None:
        name = self._function(scope, function_name)
        with self._database.write() as connection:
            self._require_function(connection, scope, name)
            records.remove_config_of(connection, scope, name)

    def attach_in(self, connection: Connection, scope: Scope, name: str, arn: str) -> None:
        """CreateFunction's CodeSigningConfigArn, in the create's transaction (the function exists)."""
        records.set_config_of(connection, scope, name, arn)

    def config_for_create(self, connection: Connection, scope: Scope, arn: str | None) -> ConfigRecord | None:
        """The config CreateFunction names (CodeSigningConfigNotFoundException if it names none)."""
        if arn is None:
            return None
        record = records.get_config(connection, arn)
        if record is None or not _in_scope(arn, scope):
            raise _config_not_found(arn)
        return record

    def config_of(self, connection: Connection, scope: Scope, name: str) -> ConfigRecord | None:
        arn = records.config_of(connection, scope, name)
        return records.get_config(connection, arn) if arn else None

    # --- the deployment check --------------------------------------------------------------------

    def verify(self, connection: Connection, config: ConfigRecord | None, name: str, package: bytes) -> None:
        """Check ``package`` against ``config`` for function ``name`` (nothing to check without one)."""
        if config is None:
            return
        problem = self._untrusted(connection, config, package)
        if problem is None:
            return
        if config.untrusted_artifact == ENFORCE:
            log.warning("code signing: refused a package for %s: %s", name, problem)
            raise CodeVerificationFailedException(
                "Lambda cannot deploy the function. The function or layer might be signed using a "
                "signature that the client is not configured to accept. Check the provided signature "
                f"for {name}."
            )
        log.warning("code signing (Warn): deploying an untrusted package for %s: %s", name, problem)

    def _untrusted(self, connection: Connection, config: ConfigRecord, package: bytes) -> str | None:
        """Why the package is untrusted (None: trusted); raises on a failed integrity check."""
        try:
            envelope = signatures.extract(package)
            if envelope is None:
                return "the package is not signed"
            claimed = envelope.manifest
        except signatures.SignatureFormatError as error:
            raise _integrity(str(error)) from error
        profile = records.profile_by_version_arn(connection, claimed.profile_version_arn)
        if profile is None:
            return f"signed by {claimed.profile_version_arn}, which is not a signing profile here"
        try:
            manifest = signatures.verify_package(package, profile.public_key.encode())
        except (signatures.BadSignature, signatures.SignatureFormatError) as error:
            raise _integrity(str(error)) from error
        allowed = set(config.allowed_publishers)
        if profile.version_arn not in allowed and profile.arn not in allowed:
            return f"signed by {profile.version_arn}, which the code signing config does not allow"
        if profile.status == "Canceled":
            return f"the signing profile {profile.arn} is canceled"
        signed_at = datetime.fromtimestamp(manifest.signed_at, UTC)
        effective = profile.revocation_effective
        if profile.status == "Revoked" and (effective is None or signed_at >= effective):
            return f"the signing profile {profile.version_arn} is revoked"
        job = records.get_job(connection, manifest.job_id)
        if job is None or job.revoked_at is not None:
            return f"the signature (signing job {manifest.job_id}) is revoked"
        if self._clock() >= datetime.fromtimestamp(manifest.expires_at, UTC):
            return f"the signature expired at {datetime.fromtimestamp(manifest.expires_at, UTC).isoformat()}"
        return None

    # --- helpers ---------------------------------------------------------------------------------

    def _config(self, connection: Connection, scope: Scope, arn: str) -> ConfigRecord:
        record = records.get_config(connection, arn)
        if record is None or not _in_scope(arn, scope):
            raise _not_found(arn)
        return record

    @staticmethod
    def _function(scope: Scope, function_name: str) -> str:
        return unqualified(scope, function_name)

    @staticmethod
    def _require_function(connection: Connection, scope: Scope, name: str) -> None:
        if not function_records.function_exists(connection, scope, name):
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")


def _integrity(reason: str) -> InvalidCodeSignatureException:
    return InvalidCodeSignatureException(
        f"Lambda cannot deploy the function. The code signature failed the integrity check: {reason}."
    )


def _in_scope(arn: str, scope: Scope) -> bool:
    return arn.startswith(f"arn:aws:lambda:{scope.region}:{scope.account}:code-signing-config:")


def _evolve(record: ConfigRecord, **changes: Any) -> ConfigRecord:
    return replace(record, **changes)
