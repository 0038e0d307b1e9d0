"""The EventBridge Scheduler API (botocore's ``scheduler`` model), served beside Lambda's.

Its errors follow the scheduler's conventions: a body of ``{"Message": ...}`` (no Lambda ``Type``),
InternalServerException for unexpected failures, ThrottlingException past the rate limit.
"""

from __future__ import annotations

from lambdad.api.dispatch import ServiceApi
from lambdad.api.scheduler import groups, schedules, tags
from lambdad.errors import InternalServerException, LambdaError, ThrottlingException


def _throttled() -> LambdaError:
    return ThrottlingException("Rate exceeded.")


def scheduler_api() -> ServiceApi:
    """The scheduler's operations, ready for ``AwsApi``."""
    return ServiceApi(
        "scheduler",
        schedules.table.merge(groups.table, tags.table),
        internal_error=InternalServerException,
        throttled=_throttled,
        message_key="Message",
        fault_in_body=False,
    )


__all__ = ["scheduler_api"]
