"""AWS Signer's API (botocore's ``signer`` model), served beside Lambda's: signing profiles, signing
platforms, signatures (SignPayload, which ``lambdad sign`` calls; RevokeSignature) and profile tags.

Its errors follow Signer's conventions: ``{"message": ...}`` bodies without Lambda's ``Type``,
InternalServiceErrorException for unexpected failures, TooManyRequestsException past the rate limit.
"""

from __future__ import annotations

from typing import Any

from lambdad.api.dispatch import ServiceApi
from lambdad.api.operations import Call, OperationTable
from lambdad.errors import InternalServiceErrorException, LambdaError, TooManyRequestsException
from lambdad.services.signing import LAMBDA_PLATFORM
from lambdad.store.signing import JobRecord, ProfileRecord

table = OperationTable()


def _principal(call: Call) -> str:
    """Who signs or revokes, as AWS records it (requestedBy, revokedBy): the request's principal."""
    return call.principal.arn


def _validity(profile: ProfileRecord) -> dict[str, Any]:
    return {"value": profile.validity_value, "type": profile.validity_type}


def _revocation(profile: ProfileRecord) -> dict[str, Any] | None:
    if profile.revoked_at is None:
        return None
    return {
        "revocationEffectiveFrom": profile.revocation_effective,
        "revokedAt": profile.revoked_at,
        "revokedBy": profile.revoked_by,
    }


@table.operation("PutSigningProfile")
def put_signing_profile(call: Call) -> dict[str, Any]:
    profile = call.services.signing.put_profile(call.scope, call.params)
    return {"arn": profile.arn, "profileVersion": profile.version, "profileVersionArn": profile.version_arn}


@table.operation("GetSigningProfile")
def get_signing_profile(call: Call) -> dict[str, Any]:
    profile = call.services.signing.get_profile(
        call.scope, call.params["profileName"], call.params.get("profileOwner")
    )
    return {
        "profileName": profile.name,
        "profileVersion": profile.version,
        "profileVersionArn": profile.version_arn,
        "revocationRecord": _revocation(profile),
        "platformId": profile.platform_id,
        "platformDisplayName": LAMBDA_PLATFORM["displayName"],
        "signatureValidityPeriod": _validity(profile),
        "status": profile.status,
        "arn": profile.arn,
        "tags": profile.tags or None,
    }


@table.operation("ListSigningProfiles")
def list_signing_profiles(call: Call) -> dict[str, Any]:
    page = call.services.signing.list_profiles(call.scope, call.params)
    return {
        "profiles": [
            {
                "profileName": profile.name,
                "profileVersion": profile.version,
                "profileVersionArn": profile.version_arn,
                "signatureValidityPeriod": _validity(profile),
                "platformId": profile.platform_id,
                "platformDisplayName": LAMBDA_PLATFORM["displayName"],
                "status": profile.status,
                "arn": profile.arn,
                "tags": profile.tags or None,
            }
            for profile in page.profiles
        ],
        "nextToken": page.next_token,
    }


@table.operation("CancelSigningProfile")
def cancel_signing_profile(call: Call) -> dict[str, Any]:
    call.services.signing.cancel_profile(call.scope, call.params["profileName"])
    return {}


@table.operation("RevokeSigningProfile")
def revoke_signing_profile(call: Call) -> dict[str, Any]:
    call.services.signing.revoke_profile(call.scope, call.params, _principal(call))
    return {}


@table.operation("SignPayload")
def sign_payload(call: Call) -> dict[str, Any]:
    signed = call.services.signing.sign_payload(call.scope, call.params, _principal(call))
    return {
        "jobId": signed.job.job_id,
        "jobOwner": signed.job.account,
        "metadata": signed.metadata,
        "signature": signed.envelope,
    }


@table.operation("StartSigningJob")
def start_signing_job(call: Call) -> dict[str, Any]:
    call.services.signing.start_signing_job(call.scope, call.params)
    return {}  # never reached: StartSigningJob needs S3


def _job(job: JobRecord) -> dict[str, Any]:
    revocation = (
        {"reason": job.revocation_reason, "revokedAt": job.revoked_at, "revokedBy": job.revoked_by}
        if job.revoked_at
        else None
    )
    return {
        "jobId": job.job_id,
        "platformId": job.platform_id,
        "platformDisplayName": LAMBDA_PLATFORM["displayName"],
        "profileName": job.profile_name,
        "profileVersion": job.profile_version,
        "createdAt": job.created_at,
        "completedAt": job.created_at,
        "signatureExpiresAt": job.expires_at,
        "requestedBy": job.requested_by,
        "status": "Succeeded",
        "revocationRecord": revocation,
        "jobOwner": job.account,
        "jobInvoker": job.account,
    }


@table.operation("DescribeSigningJob")
def describe_signing_job(call: Call) -> dict[str, Any]:
    return _job(call.services.signing.describe_job(call.scope, call.params["jobId"]))


@table.operation("ListSigningJobs")
def list_signing_jobs(call: Call) -> dict[str, Any]:
    jobs = call.services.signing.list_jobs(call.scope)
    wanted = call.params
    listed = []
    for job in jobs:
        if (
            wanted.get("status") not in (None, "Succeeded")
            or wanted.get("platformId") not in (None, job.platform_id)
            or wanted.get("requestedBy") not in (None, job.requested_by)
            or wanted.get("isRevoked") not in (None, job.revoked_at is not None)
        ):
            continue
        described = _job(job)
        listed.append(
            {
                "jobId": job.job_id,
                "createdAt": job.created_at,
                "status": "Succeeded",
                "isRevoked": job.revoked_at is not None,
                "profileName": job.profile_name,
                "profileVersion": job.profile_version,
                "platformId": job.platform_id,
                "platformDisplayName": described["platformDisplayName"],
                "signatureExpiresAt": job.expires_at,
                "jobOwner": job.account,
                "jobInvoker": job.account,
            }
        )
    return {"jobs": listed}


@table.operation("RevokeSignature")
def revoke_signature(call: Call) -> dict[str, Any]:
    call.services.signing.revoke_signature(call.scope, call.params, _principal(call))
    return {}


@table.operation("GetRevocationStatus")
def get_revocation_status(call: Call) -> dict[str, Any]:
    return {"revokedEntities": call.services.signing.revoked_entities(call.params)}


@table.operation("GetSigningPlatform")
def get_signing_platform(call: Call) -> dict[str, Any]:
    return call.services.signing.platform(call.params["platformId"])


@table.operation("ListSigningPlatforms")
def list_signing_platforms(call: Call) -> dict[str, Any]:
    wanted = {key: call.params.get(key) for key in ("category", "partner", "target")}
    platform = LAMBDA_PLATFORM
    matches = all(value is None or platform[key] == value for key, value in wanted.items())
    return {"platforms": [dict(platform)] if matches else []}


@table.operation("TagResource")
def tag_resource(call: Call) -> dict[str, Any]:
    call.services.signing.tag(call.scope, call.params["resourceArn"], call.params["tags"])
    return {}


@table.operation("UntagResource")
def untag_resource(call: Call) -> dict[str, Any]:
    call.services.signing.untag(call.scope, call.params["resourceArn"], call.params["tagKeys"])
    return {}


@table.operation("ListTagsForResource")
def list_tags_for_resource(call: Call) -> dict[str, Any]:
    return {"tags": call.services.signing.tags(call.scope, call.params["resourceArn"])}


def _throttled() -> LambdaError:
    return TooManyRequestsException("Rate exceeded.")


def signer_api() -> ServiceApi:
    """Signer's operations, ready for ``AwsApi`` (after the scheduler's: both have ``/tags/...``)."""
    return ServiceApi(
        "signer",
        table,
        internal_error=InternalServiceErrorException,
        throttled=_throttled,
        message_key="message",
        fault_in_body=False,
    )


__all__ = ["signer_api"]
