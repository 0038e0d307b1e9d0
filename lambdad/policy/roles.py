"""What a role lambdad acts with may do: the port through which event source mappings, destinations and
schedules ask, before they act with a role, whether it may (``lambdad.api.authorization.RoleActions``
answers, from the identity store).

It lives here, beside the policy language, so that the layers below the API (``events``, ``services``)
can take it without importing the API. Only roles the identity store has are checked: with
authentication off there is no store, and a role it does not know (a name only, as every role was before
identities) keeps lambdad's earlier behaviour: nothing is refused for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class RolePermissions(Protocol):
    """Whether a role, assumed by a service, may perform an action on a resource."""

    def denial(
        self,
        role_arn: str,
        action: str,
        resource: str,
        *,
        service: str,
        session: str,
        context: Mapping[str, Any] | None = None,
    ) -> str | None:
        """None if ``service`` (``scheduler.amazonaws.com``, ``lambda.amazonaws.com``) may assume the role
        and a session of it (named ``session``) may perform ``action`` on ``resource``, or if the identity
        store does not know the role; else why not, in AWS's words (the AccessDeniedException message,
        or that the role cannot be assumed). ``context``: the keys the role's trust policy may test when
        the service assumes it (``aws:SourceAccount``, ``aws:SourceArn``: the schedule's or function's).
        Blocking: reads the identity store."""
        ...


def function_source(function_arn: str) -> dict[str, str]:
    """The trust-policy keys Lambda gives when it assumes a function's execution role: the function's
    account and (unqualified) ARN."""
    parts = function_arn.split(":")
    return {"aws:SourceAccount": parts[4], "aws:SourceArn": ":".join(parts[:7])}
