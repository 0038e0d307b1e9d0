"""The execution role's credentials an environment hands its function, as AWS does: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` of a role session named after the function.

``RoleCredentials`` is the port; the composition root picks one implementation:

- ``NoRoleCredentials`` gives none, and the environment keeps lambdad's placeholder credentials (a server
  without identities: anything a function sends is accepted as its ``Caller`` anyway).
- ``SessionRoleCredentials`` asks the STS side of the IAM store for a role session (``IssueRoleSession``,
  the signature of ``issue_role_session(role_arn, session_name, duration_s)``), in a worker thread.

Renewal is AWS's: credentials are issued once, when an environment is created (a spare gets them when it
is specialised for a function, not before), and outlive it. The environment is retired (``retire_at``)
before they expire: at its maximum age (``Settings.environment_max_age``, 2 h by default, as AWS recycles
environments after a few hours) and in any case one function timeout plus a minute before the session
ends, so an invocation that starts just before retirement still finishes with valid credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

#: Seconds credentials must outlive an environment's retirement beyond the function's timeout.
EXPIRY_MARGIN_S = 60.0


@dataclass(frozen=True)
class Credentials:
    """A role session's temporary credentials."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime

    def __repr__(self) -> str:  # never the secret parts, should one reach a log line
        return f"Credentials({self.access_key_id}, expires {self.expiration.isoformat()})"

    def seconds_left(self, now: datetime | None = None) -> float:
        """Seconds until they expire."""
        return (self.expiration - (now or datetime.now(UTC))).total_seconds()


class RoleCredentials(Protocol):
    """Issues the credentials of a function's execution role for one new environment."""

    async def for_environment(self, function_arn: str, role_arn: str) -> Credentials | None:
        """The credentials for an environment of ``function_arn``; None: keep the placeholders."""
        ...


class NoRoleCredentials:
    """No identities: environments keep lambdad's placeholder credentials (today's behaviour)."""

    async def for_environment(self, function_arn: str, role_arn: str) -> Credentials | None:
        return None


#: ``(role_arn, session_name, duration_s) -> (access_key_id, secret_access_key, session_token, expiration)``;
#: the expiration as a datetime, an ISO 8601 text or seconds since the epoch.
IssueRoleSession = Callable[[str, str, int], tuple[str, str, str, datetime | str | float]]


def _moment(value: datetime | str | float) -> datetime:
    """An expiration as an aware datetime, whichever form the issuer gives it in."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = datetime.fromtimestamp(value, UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class SessionRoleCredentials:
    """A role session per environment from the IAM store's STS service, named after the function (as AWS
    names the sessions of execution roles), lasting ``duration_s``."""

    def __init__(self, issue: IssueRoleSession, duration_s: int) -> None:
        self._issue = issue
        self._duration_s = duration_s

    async def for_environment(self, function_arn: str, role_arn: str) -> Credentials | None:
        session_name = function_arn.split(":")[6]  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        # The store is a database write: off the event loop every environment shares.
        access_key_id, secret, token, expiration = await asyncio.to_thread(
            self._issue, role_arn, session_name, self._duration_s
        )
        return Credentials(access_key_id, secret, token, _moment(expiration))
