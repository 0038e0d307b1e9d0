"""Concurrency leases for the whole cluster, counted in a NATS JetStream key-value bucket.

Layout. The bucket ``<cluster>_leases`` holds one key per counter: ``<account>.<region>.fn.<name>`` for a
function with reserved concurrency, ``<account>.<region>.pool`` for the account's unreserved pool. Its
value is a JSON object of node id -> invocations that node runs under the counter now (``{"n1": 2,
"n3": 1}``); the counter's
total is the sum of the shares that count (see "Dead nodes"). Every write is a compare-and-set on the
entry's revision (``kv.update(key, value, last=revision)``), so two nodes never both take the last slot,
and every write replaces only the writer's own share.

Round trips. Each node watches the bucket and keeps every counter's latest entry and revision, so:

- acquire: one CAS write when this node holds no spare slot of its own; plus one get and one write for
  each other node's write that came in between (at most MAX_ATTEMPTS); none when a slot this node gave
  back is not written back yet (back-to-back invocations on one node reuse it). Before refusing, the
  entry is read once more (one get), so that a cache a few milliseconds old never causes a 429, and if
  other nodes hold the slots, the acquire waits up to REFUSAL_WAIT (50 ms) for one of them to give one
  back (a refusal costs that much more time, never a wrong answer).
- release: none on the invocation's path; one CAS write in the background, which folds every release that
  happened meanwhile into one. The write waits a little first, and the invocations that arrive meanwhile
  reuse the slots without asking: TIGHT_LINGER (10 ms, less than REFUSAL_WAIT, so another node asking
  for the slot gets it) covers a client's next request on the same connection; under a loose limit (at
  least LINGER_MIN_LIMIT, this node's share and the others' together at most half of it) LINGER (1 s), so
  that a node under steady load writes a counter about twice a second, whatever its invocation rate.
- every write reaches every node's watch: N deliveries for N nodes.

So a warm invocation costs at most 2 JetStream KV writes (one on its path) and 2N watch deliveries, and
back-to-back invocations on one node none; under a loose limit (the account's unreserved pool, usually)
a node writes about 2 per counter and second.

Dead nodes. A share counts while ``Membership`` says its node is live or suspect. Once it says dead
(DEAD_AFTER = 10 s without a heartbeat, on the observer's own clock, checked on every acquire), the share
stops counting at once, and any node's next write of the entry leaves it out; a sweep (on every membership
change and every SWEEP_EVERY s) removes it from entries nobody writes. A share of a node ``Membership``
has not heard of counts until it has been unknown for DEAD_AFTER (a node that just joined, whose first
heartbeat is on its way, keeps its share). Bound: a SIGKILLed node's leases are usable again at most
DEAD_AFTER + HEARTBEAT_EVERY = 11 s after it died (its last heartbeat was at most HEARTBEAT_EVERY before;
the end-to-end test measures about 10 s and asserts 15). A node that stops cleanly writes its shares
to 0 as it leaves; a node that restarts under the same id clears its predecessor's shares when it starts.

NATS unreachable. Leases never wait for NATS longer than ASK_TIMEOUT (2 s), and do not ask at all while
this node is cut off. For CUT_OFF_GRACE (5 s) after losing NATS a node still uses the slots it holds
(written to the entry, not yet given back); beyond them it admits up to its fair share of the limit: the
limit divided by the nodes that shared the counter when NATS was last heard (``_fair_share``), and refuses
the rest with 429 TooManyRequestsException and the limit's Reason. So a cluster whose NATS restarts keeps
running invocations within the limit (each node within its share; a reservation smaller than the nodes
sharing it waits for NATS). When only some nodes are cut off, the others stop counting them once they
seem dead (DEAD_AFTER) and the cluster may run up to their shares more than the limit until NATS is
back. Releases and admissions are written when NATS is back (the sweep writes this node's share as what
it runs then); a node that was thought dead writes its shares back when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import nats.errors
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from lambdad.cluster.connection import ClusterConnection
from lambdad.cluster.membership import DEAD_AFTER, NodeState
from lambdad.errors import TooManyRequestsException
from lambdad.invocation.concurrency import ACCOUNT_LIMIT, RESERVED_LIMIT, FunctionKey, Lease

log = logging.getLogger(__name__)

BUCKET = "leases"
ASK_TIMEOUT = 2.0  # the longest an acquire waits for NATS
MAX_ATTEMPTS = 8  # CAS writes an acquire tries before it gives up (each lost to another node's write)
SWEEP_EVERY = 5.0
CUT_OFF_GRACE = 5.0  # keep using this node's own slots this long after losing NATS (< DEAD_AFTER)
LINGER = 1.0  # how long slots given back under a loose limit stay this node's (see the module docstring)
TIGHT_LINGER = 0.01  # the same under any other limit
REFUSAL_WAIT = 0.05  # how long an acquire waits for another node to give a slot back (> TIGHT_LINGER)
LINGER_MIN_LIMIT = 50
RETRY_FIRST, RETRY_MAX = 0.2, 5.0  # background give-backs retry after a NATS error


class _Answer(Enum):
    ADMITTED = "admitted"
    FULL = "full"  # the other nodes hold every slot
    UNAVAILABLE = "unavailable"  # NATS did not answer, or other nodes' writes kept winning


class NodeStates(Protocol):
    """Who counts: ``Membership``'s view of the nodes."""

    def state(self, node_id: str) -> NodeState | None: ...

    def subscribe(self, listener: Callable[[], None]) -> None: ...


@dataclass
class _Counter:
    """One key of the bucket as this node knows it."""

    key: str
    shares: dict[str, int] = field(default_factory=dict)  # the entry as last seen
    revision: int = 0  # of ``shares``; 0 while the key does not exist
    in_use: int = 0  # leases this node holds under this counter now
    written: int = 0  # this node's share in the entry, as this node last wrote it (>= in_use)
    usable: int = 0  # slots acquire may hand out without asking: ``written``, less during a give-back
    limit: int = 0  # the limit the last acquire counted against
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one write of this node at a time
    giving_back: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) on every change
    waiters: int = 0  # acquires waiting for ``changed``

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


def _key(function: FunctionKey, reserved: bool) -> str:
    scope, name = function
    where = f"{scope.account}.{scope.region}"
    return f"{where}.fn.{name}" if reserved else f"{where}.pool"


class ClusterConcurrencyLeases:
    """``ConcurrencyLeases`` for the cluster as a whole (see the module's docstring). Event-loop only."""

    def __init__(self, connection: ClusterConnection, nodes: NodeStates, account_limit: int) -> None:
        self.account_limit = account_limit
        self._connection = connection
        self._nodes = nodes
        self._me = connection.node_id
        self._kv: KeyValue | None = None
        self._counters: dict[str, _Counter] = {}
        self._local: dict[FunctionKey, int] = defaultdict(int)
        self._unknown_since: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._sweep_soon = asyncio.Event()
        self._stopping = False
        self._warned = False

    # ConcurrencyLeases ------------------------------------------------------------------------------------

    async def acquire(self, function: FunctionKey, reserved: int | None, total_reserved: int) -> Lease:
        if reserved is not None:
            limit, reason = reserved, RESERVED_LIMIT
        else:
            limit, reason = self.account_limit - total_reserved, ACCOUNT_LIMIT
        counter = self._counter(_key(function, reserved is not None))
        counter.limit = limit
        if counter.in_use < counter.usable and self._may_use_own_slots():
            counter.in_use += 1
        elif self._connection.lost_at is not None:
            # Cut off from NATS: admit within this node's fair share of the limit, so that a cluster
            # whose NATS restarts keeps running (every node within its share: within the limit).
            if counter.in_use >= self._fair_share(counter, limit):
                raise TooManyRequestsException.rate_exceeded(reason)
            counter.in_use += 1
        elif counter.in_use >= limit or not await self._admit(counter, limit):
            raise TooManyRequestsException.rate_exceeded(reason)
        self._local[function] += 1
        return Lease(function, reserved=reserved is not None)

    def release(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        self._local[lease.function] -= 1
        counter = self._counter(_key(lease.function, lease.reserved))
        counter.in_use -= 1
        if counter.waiters:
            counter.wake()  # an acquire waiting for another node's slot can have this one
        if counter.giving_back is None and not self._stopping:
            counter.giving_back = asyncio.get_running_loop().create_task(self._give_back(counter))

    def in_flight(self, function: FunctionKey) -> int:
        return self._local[function]

    # Start and stop ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the bucket, clear a predecessor's shares under this node id, then watch and sweep."""
        self._kv = await self._connection.key_value(BUCKET)
        watcher: Any = await self._kv.watchall()
        while (entry := await watcher.updates(timeout=ASK_TIMEOUT)) is not None:
            self._seen(entry)
        for counter in list(self._counters.values()):
            if counter.shares.get(self._me):
                await self._write_until_done(counter, 0)
        self._tasks = [
            asyncio.create_task(self._watch(watcher), name="leases watch"),
            asyncio.create_task(self._sweeps(), name="leases sweep"),
        ]
        self._nodes.subscribe(self._sweep_soon.set)
        self._connection.on_connection(self._connection_changed)

    async def stop(self) -> None:
        """Stop watching and give every share of this node back (invocations have ended by now)."""
        self._stopping = True
        tasks = [*self._tasks, *(c.giving_back for c in self._counters.values() if c.giving_back)]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._kv is None or not self._connection.connected:
            return
        for counter in self._counters.values():
            if counter.written or counter.shares.get(self._me):
                with contextlib.suppress(TimeoutError, nats.errors.Error):
                    await self._write_until_done(counter, 0)

    # Counting ---------------------------------------------------------------------------------------------

    def _counter(self, key: str) -> _Counter:
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(key)
        return counter

    def _counts(self, node: str) -> bool:
        """Whether ``node``'s shares count: it is not dead, nor unknown for DEAD_AFTER."""
        state = self._nodes.state(node)
        if state is None:
            since = self._unknown_since.setdefault(node, time.monotonic())
            return time.monotonic() - since < DEAD_AFTER
        self._unknown_since.pop(node, None)
        return state is not NodeState.DEAD

    def _others(self, counter: _Counter) -> int:
        return sum(n for node, n in counter.shares.items() if node != self._me and self._counts(node))

    def _fair_share(self, counter: _Counter, limit: int) -> int:
        """This node's part of ``limit`` while it cannot count with the others: the limit divided by the
        nodes that shared the counter when NATS was last heard (this one included)."""
        sharing = 1 + sum(1 for node in counter.shares if node != self._me and self._counts(node))
        return limit // sharing

    def _may_use_own_slots(self) -> bool:
        lost_at = self._connection.lost_at
        return lost_at is None or time.monotonic() - lost_at < CUT_OFF_GRACE

    async def _admit(self, counter: _Counter, limit: int) -> bool:
        """``_ask``; while the other nodes hold every slot, wait up to REFUSAL_WAIT for one to come back
        (slots linger on their node TIGHT_LINGER after their invocation ended)."""
        deadline = time.monotonic() + REFUSAL_WAIT
        while True:
            answer = await self._ask(counter, limit)
            if answer is not _Answer.FULL:
                return answer is _Answer.ADMITTED
            changed = counter.changed  # nothing ran since _ask read the entry: no change is missed
            counter.waiters += 1
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await changed.wait()
            except TimeoutError:
                return False
            finally:
                counter.waiters -= 1

    async def _ask(self, counter: _Counter, limit: int) -> _Answer:
        """Raise this node's share by one if the cluster's total stays within ``limit``; FULL if it would
        not, UNAVAILABLE if NATS does not answer within ASK_TIMEOUT."""
        try:
            async with asyncio.timeout(ASK_TIMEOUT), counter.lock:
                if counter.in_use < counter.usable:  # a give-back failed meanwhile: its slot is still ours
                    counter.in_use += 1
                    return _Answer.ADMITTED
                fresh = False
                for _ in range(MAX_ATTEMPTS):
                    want = counter.in_use + 1
                    if self._others(counter) + want > limit:
                        if fresh:
                            return _Answer.FULL
                        await self._read(counter)
                        fresh = True
                        continue
                    if await self._write(counter, want):
                        counter.in_use += 1
                        self._warned = False
                        return _Answer.ADMITTED
                    fresh = True  # the write lost to another node's and read the entry again
                return _Answer.UNAVAILABLE  # lost MAX_ATTEMPTS races in a row: refused, not waited for
        except (TimeoutError, nats.errors.Error) as error:
            if not self._warned:
                self._warned = True
                log.warning("concurrency leases: NATS did not answer (%r); refusing invocations", error)
            return _Answer.UNAVAILABLE

    async def _write(self, counter: _Counter, own: int) -> bool:
        """CAS the entry with this node's share set to ``own`` and the shares that no longer count left
        out; False (and the entry read again) if another node wrote it first."""
        assert self._kv is not None
        shares = {
            node: n for node, n in counter.shares.items() if node != self._me and n > 0 and self._counts(node)
        }
        if own:
            shares[self._me] = own
        value = json.dumps(shares, separators=(",", ":"), sort_keys=True).encode()
        try:
            revision = await self._kv.update(counter.key, value, last=counter.revision)
        except KeyWrongLastSequenceError:
            await self._read(counter)
            return False
        counter.shares, counter.revision = shares, revision
        counter.written = counter.usable = own
        return True

    async def _write_until_done(self, counter: _Counter, own: int) -> None:
        async with asyncio.timeout(ASK_TIMEOUT), counter.lock:
            for _ in range(MAX_ATTEMPTS):
                if await self._write(counter, own):
                    return

    async def _give_back(self, counter: _Counter) -> None:
        """Lower this node's share to the leases it holds, retrying while NATS is away."""
        delay = RETRY_FIRST
        try:
            # The next invocations reuse the slots meanwhile.
            loose = (
                counter.limit >= LINGER_MIN_LIMIT
                and 2 * (self._others(counter) + counter.written) <= counter.limit
            )
            await asyncio.sleep(LINGER if loose else TIGHT_LINGER)
            while counter.written > counter.in_use and not self._stopping:
                try:
                    async with asyncio.timeout(ASK_TIMEOUT), counter.lock:
                        if counter.written <= counter.in_use:
                            break
                        # Slots being given back are not handed out while the write is under way.
                        counter.usable = counter.in_use
                        try:
                            await self._write(counter, counter.in_use)
                        finally:
                            counter.usable = counter.written
                    delay = RETRY_FIRST
                except (TimeoutError, nats.errors.Error) as error:
                    log.debug("concurrency leases: give-back of %s failed: %r", counter.key, error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
        finally:
            counter.giving_back = None

    # The bucket -------------------------------------------------------------------------------------------

    async def _read(self, counter: _Counter) -> None:
        assert self._kv is not None
        try:
            entry = await self._kv.get(counter.key)
        except KeyNotFoundError as error:
            # Never written (revision 0), or deleted: the delete marker's revision is the one to write on.
            marker = error.entry
            counter.shares, counter.revision = {}, marker.revision if marker is not None else 0
            return
        self._seen(entry)

    def _seen(self, entry: Any) -> None:
        """Keep ``entry`` if it is newer than what this node knows of its key."""
        counter = self._counter(entry.key)
        if entry.revision is None or entry.revision <= counter.revision:
            return
        shares: dict[str, int] = {}
        if entry.operation not in ("DEL", "PURGE") and entry.value:
            try:
                shares = {str(node): int(n) for node, n in json.loads(entry.value).items()}
            except (ValueError, TypeError, AttributeError):
                log.warning("concurrency leases: ignoring a malformed entry under %r", entry.key)
        counter.shares, counter.revision = shares, entry.revision
        counter.wake()

    async def _watch(self, watcher: Any) -> None:
        while True:
            try:
                entry = await watcher.updates(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("concurrency leases watch: %s", error)
                await asyncio.sleep(0.5)
                continue
            if entry is not None:
                self._seen(entry)

    async def _sweeps(self) -> None:
        """Remove the shares that no longer count from the entries; write this node's share back where
        it is missing (the others thought this node dead while it was cut off)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_soon.wait(), SWEEP_EVERY)
            self._sweep_soon.clear()
            if self._connection.lost_at is not None:
                continue
            for counter in list(self._counters.values()):
                stale = any(node != self._me and not self._counts(node) for node in counter.shares)
                # Admitted while cut off (within its fair share): more in use than written.
                share = max(counter.written, counter.in_use)
                if (stale or counter.shares.get(self._me, 0) != share) and not counter.lock.locked():
                    try:
                        await self._write_until_done(counter, share)
                    except (TimeoutError, nats.errors.Error) as error:
                        log.debug("concurrency leases: sweep of %s failed: %r", counter.key, error)

    async def _connection_changed(self, up: bool) -> None:
        if not up:
            return
        # A restarted NATS forgot the watch's consumer, and without its files the bucket too: bind (or
        # make) the bucket and watch afresh, as membership does; JetStream may need a moment.
        for _ in range(20):
            try:
                self._kv = await self._connection.key_value(BUCKET)
                watcher: Any = await self._kv.watchall()
                break
            except Exception as error:
                log.debug("concurrency leases rewatch: %s", error)
                await asyncio.sleep(0.5)
        else:
            log.warning("could not watch the concurrency leases again; the old watch resumes by itself")
            watcher = None
        if watcher is not None and self._tasks:
            old = self._tasks[0]
            self._tasks[0] = asyncio.create_task(self._watch(watcher), name="leases watch")
            old.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await old
        # The watch may have missed writes while NATS was away: read every entry again, then sweep.
        for counter in list(self._counters.values()):
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                async with asyncio.timeout(ASK_TIMEOUT):
                    await self._read(counter)
        self._sweep_soon.set()
