"""What one environment's Runtime API server accepts from the sandbox it serves.

The function's own code can talk to its ``127.0.0.1:9001`` as freely as the runtime client does, so the
server bounds what any one connection, and the sandbox as a whole, can make lambdad hold: the request
head (as AWS's Runtime Interface Emulator does with Go's ``net/http`` ``MaxHeaderBytes``: 1 MB, answered
431), the number of header fields, the number of open connections (awslambdaric keeps one; extensions
and the Lambda API calls a function makes through ``AWS_ENDPOINT_URL_LAMBDA`` need a few more), how
long a connection may sit idle, and the body of a request that is not an invocation's result (only
results may be large, and they are bounded by the function's timeout; the forwarded Lambda API has
Invoke's 6 MB limit).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from lambdad.runtime_api.model import MAX_PAYLOAD_SIZE


@dataclass(frozen=True)
class Limits:
    #: Request line plus headers, in bytes (Go's ``http.DefaultMaxHeaderBytes``, which the RIE keeps).
    max_head_bytes: int = 1 << 20
    #: Header fields in one request (a runtime client sends under ten, boto3 about a dozen).
    max_headers: int = 100
    #: Open connections per environment; one more is answered 503 and closed.
    max_connections: int = 32
    #: Seconds a connection may go without a byte before it is closed, unless it waits on lambdad (a
    #: pending ``next`` or specialisation long-poll, a forwarded call, an invocation owed its result).
    idle_timeout: float = 30.0
    #: The body of a request that is not an invocation's result (or init error), in bytes.
    max_body: int = MAX_PAYLOAD_SIZE
    #: Connections an environment gets even when the process-wide budget is spent (its runtime's own
    #: and one more), so that other sandboxes' floods never lock a runtime out.
    floor: int = 2
    #: Refused connections kept open for a moment so that the client reads its 503 (closing a socket
    #: with unread input resets it, and the client may lose the answer); past this many, closed at once.
    max_lingering: int = 16
    #: Seconds a refused connection lingers.
    linger: float = 1.0


class ConnectionBudget:
    """Runtime API connections (lingering refusals included) open across every environment of the
    process. Descriptors are the process's: a thousand environments at their cap would hold 48,000, so
    past the budget an environment gets only its ``floor``."""

    def __init__(self, total: int | None = None) -> None:
        self._total = total
        self.open = 0

    @property
    def total(self) -> int:
        """The budget: as given, else a quarter of the open-file limit (read now: start-up raises it)."""
        if self._total is not None:
            return self._total
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4

    @property
    def spent(self) -> bool:
        return self.open >= self.total


#: The process's budget, which every server shares unless given its own (tests).
SHARED_BUDGET = ConnectionBudget()
