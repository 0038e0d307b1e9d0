"""The STS API (botocore's ``sts`` model, query protocol): GetCallerIdentity and AssumeRole.

Session policies (AssumeRole's ``Policy`` and ``PolicyArns``) would narrow a session's permissions; they
are not evaluated, so they are refused rather than ignored. Tags, source identity and MFA members are
not served either (refused the same way where they would restrict).
"""

from __future__ import annotations

from typing import Any

from lambdad.api.authorization import principal_keys
from lambdad.api.dispatch import ServiceApi
from lambdad.api.iam import caller
from lambdad.api.operations import Call, OperationTable
from lambdad.errors import InternalFailure, LambdaError, Throttling, ValidationError
from lambdad.services.sts import StsService

table = OperationTable()


def _sts(call: Call) -> StsService:
    if call.services.sts is None:
        raise InternalFailure("STS is not served by this lambdad.")
    return call.services.sts


@table.operation("GetCallerIdentity")
def get_caller_identity(call: Call) -> dict[str, Any]:
    return _sts(call).get_caller_identity(caller(call))


@table.operation("AssumeRole")
def assume_role(call: Call) -> dict[str, Any]:
    params = call.params
    for member in ("Policy", "PolicyArns", "SerialNumber", "TokenCode"):
        if params.get(member):
            raise ValidationError(f"{member} is not supported by lambdad's AssumeRole.")
    principal = caller(call)
    return _sts(call).assume_role(
        principal,
        params["RoleArn"],
        params["RoleSessionName"],
        params.get("DurationSeconds"),
        principal_keys(principal),
    )


def _throttled() -> LambdaError:
    return Throttling("Rate exceeded")


def sts_api() -> ServiceApi:
    """STS's operations, ready for ``AwsApi``."""
    return ServiceApi("sts", table, internal_error=InternalFailure, throttled=_throttled, fault_in_body=False)


__all__ = ["sts_api", "table"]
