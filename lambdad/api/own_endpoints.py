"""lambdad's own endpoints (``/_lambdad/logs``, ``nodes``, ``event-source-mappings``, ``schedules``) under
authentication: each is read like the AWS API that gives the same information, so each asks for the IAM
action AWS would (``OWN_ENDPOINTS``), on a request signed for Lambda. ``/health`` stays open: a liveness
probe carries no credentials and it tells counts only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lambdad.api.dispatch import AwsApi
from lambdad.models import Scope

Endpoint = Callable[[Request], Awaitable[Response]]


def log_group_resource(request: Request) -> Callable[[Scope], str]:
    """The resource logs:FilterLogEvents names for the ``group`` the request reads. AWS evaluates it on
    the group's streams (``log-group:NAME:log-stream:``, as its denials say), so both a policy naming
    ``log-group:NAME:*`` and ``arn:aws:logs:*:*:*`` (AWSLambdaBasicExecutionRole) match it."""
    group = request.query_params.get("group", "")
    return lambda scope: f"arn:aws:logs:{scope.region}:{scope.account}:log-group:{group}:log-stream:"


def _any(request: Request) -> Callable[[Scope], str]:
    return lambda scope: "*"


#: Path -> (IAM action, the resource it is asked on). Listing mappings or schedules and reading the
#: account's settings are actions on "*" in IAM.
OWN_ENDPOINTS: dict[str, tuple[str, Callable[[Request], Callable[[Scope], str]]]] = {
    "/_lambdad/logs": ("logs:FilterLogEvents", log_group_resource),
    "/_lambdad/nodes": ("lambda:GetAccountSettings", _any),
    "/_lambdad/event-source-mappings": ("lambda:ListEventSourceMappings", _any),
    "/_lambdad/schedules": ("scheduler:ListSchedules", _any),
}


def guarded(api: AwsApi, path: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` answering only requests ``api`` authenticates and allows ``OWN_ENDPOINTS[path]``."""
    action, resource = OWN_ENDPOINTS[path]

    async def checked(request: Request) -> Response:
        decided = await api.authorize_own(request, action, resource(request))
        if isinstance(decided, Response):
            return decided
        request.state.account = decided.account if decided is not None else None
        return await endpoint(request)

    return checked


def of_callers_account(request: Request, rows: list[dict[str, Any]], arn_key: str) -> list[dict[str, Any]]:
    """The ``rows`` whose ``arn_key`` ARN is in the signer's account: a team sees its own mappings or
    schedules, not another account's (all of them with authentication off)."""
    account = getattr(request.state, "account", None)
    if account is None:
        return rows
    return [row for row in rows if _account_of(row.get(arn_key)) == account]


def _account_of(arn: Any) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else None
