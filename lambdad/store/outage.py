"""When the database cannot be reached: how to tell, and how a background loop waits it out.

A cluster's PostgreSQL can go away (a restart, a failover, a network cut). Nothing in lambdad may hang
or show a traceback because of it: the engine bounds every wait (``database.py``: connect, pool and
statement timeouts), the API answers an AWS-style error (``api/dispatch.py``), and each background loop
logs the outage once, backs off, and resumes when the database answers again (``Outage``).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

#: What a client is told when its request could not reach the database.
UNAVAILABLE_MESSAGE = "lambdad's database is unavailable, so the request was not completed; retry shortly"

_FIRST_DELAY = 0.25
_MAX_DELAY = 4.0  # a loop finds the database back within this long after it returned


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database could not be reached or dropped the
    connection, rather than refusing a statement (a constraint, a bug): a connection refused or
    broken, a server shutting down, a pool or statement timeout."""
    seen: BaseException | None = error
    for _ in range(8):  # a chain of causes is short; a cycle in one must not loop
        if seen is None:
            return False
        if isinstance(seen, (OperationalError, InterfaceError, PoolTimeoutError)):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reason(error: BaseException) -> str:
    """The first line of the driver's own words for ``error``, for a one-line log."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


class Outage:
    """One background loop's view of a database outage: logged once when it starts and once when it
    ends, with a delay before each retry that doubles up to a few seconds."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._since: float | None = None
        self._delay = _FIRST_DELAY

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> float | None:
        """Note that ``error`` happened; the seconds to wait before trying again if it is an outage,
        None if it is not (the caller logs it as the fault it is)."""
        if not unavailable(error):
            return None
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning("%s: the database is unavailable (%s); retrying", self._what, reason(error))
            self._delay = _FIRST_DELAY
        else:
            self._delay = min(self._delay * 2, _MAX_DELAY)
        return self._delay

    def succeeded(self) -> None:
        """Note that the database answered: an outage in progress is over."""
        if self._since is not None:
            self._log.warning(
                "%s: the database is back after %.1f s", self._what, time.monotonic() - self._since
            )
            self._since = None
            self._delay = _FIRST_DELAY
