"""Signatures verified through a database outage: the identity store's answers, remembered.

Every signed request asks the identity store for its access key's secret (``CredentialResolver``). A
cluster keeps serving warm invokes while its PostgreSQL is away (docs/cluster.md), which it could not do if
every request needed a database read to be authenticated. ``OutageTolerantResolver`` asks the store every
time, as before, and only when the store cannot be reached (``store.outage.unavailable``) answers from the
last answer it had for that key, if that is recent (15 minutes). So a key made inactive or deleted stops
working at once while the database works; during an outage a key that was in use keeps working, as it did
just before (a session's expiry is still checked by the verifier); an unseen key gets the outage's error.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from lambdad.api.sigv4 import CredentialResolver, KnownKey
from lambdad.store import outage

#: How long an answer stands in for the store during an outage.
KEEP_S = 900.0
#: Keys remembered at most (the least recently used go first).
CAPACITY = 10_000


class OutageTolerantResolver:
    """A ``CredentialResolver`` answering from its last resolution of a key while the store is down."""

    def __init__(
        self,
        resolver: CredentialResolver,
        keep_s: float = KEEP_S,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._keep_s = keep_s
        self._capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[str, tuple[KnownKey, float]] = OrderedDict()
        self._lock = threading.Lock()  # resolve runs in worker threads

    def resolve(self, access_key_id: str) -> KnownKey | None:
        try:
            found = self._resolver.resolve(access_key_id)
        except Exception as error:
            if not outage.unavailable(error):
                raise
            with self._lock:
                remembered = self._seen.get(access_key_id)
            if remembered is None or self._clock() - remembered[1] > self._keep_s:
                raise
            return remembered[0]
        with self._lock:
            if found is None:
                self._seen.pop(access_key_id, None)
            else:
                self._seen[access_key_id] = (found, self._clock())
                self._seen.move_to_end(access_key_id)
                while len(self._seen) > self._capacity:
                    self._seen.popitem(last=False)
        return found
