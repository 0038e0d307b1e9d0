"""Work with exactly one owner across the cluster: leases in PostgreSQL, spread by rendezvous hashing.

Each piece of work (a ``WorkKind`` and a key) has a row in ``work_leases`` while a node holds it: the
node's id and incarnation and ``lease_until`` on PostgreSQL's clock. Each node also holds a lease on
itself (kind ``Node``). Every RENEW_EVERY seconds a node, in one transaction,

1. renews every lease it holds, in one statement (the rows it gets back are what it holds);
2. works out the *desired* owner of every key its users track: among the *eligible* nodes -- live in
   ``Membership`` (heard over NATS) and holding an unexpired node lease (reaching PostgreSQL) -- the one
   with the highest hash of (node, kind, key): rendezvous hashing, so a node joining takes a fair share
   and moves nothing else, and a node dying hands its keys to the survivors evenly;
3. takes the keys it is the desired owner of, where nobody holds them, their lease ran out, or an earlier
   incarnation of this very node held them (a restart takes its work back at once);

and then lets go of keys that now belong elsewhere (or that nobody tracks any more): it tells its users
first (``owns`` turns False, listeners are awaited, so pollers stop), then deletes the rows, and the
desired owner takes them on its next pass.

Take-over: a SIGKILLed node renews nothing, so its leases (node lease included) lapse at most
LEASE_SECONDS (8 s) after the kill; the survivors' next pass (RENEW_EVERY, 1 s) takes its keys: about
9 s, at most 15 s (the bound lambdad documents) with slow passes. A clean stop deletes the rows at once.

Never two owners: ``owns`` answers from this node's own clock, and counts a lease as lost SAFETY seconds
before PostgreSQL would let it go (its expiry counts from *before* the renewal was sent). A node cut off
from PostgreSQL renews nothing, so its leases lapse here first, its users are told and stop their work
while the rows still bar everyone else; then its node lease lapses too and the others take its work.
(Schedules would not fire a slot twice even so: ``claim_slot`` is a compare-and-set; Event invocations
keep their per-row leases.)

When an Event-queue partition changes hands over a lapsed lease, the events the dead holder had claimed
in it are released in the same transaction, so they run again at once instead of after their own leases
(60 s). A node's incarnation is its Event queue's ``owner`` for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import timedelta

import anyio.to_thread
from sqlalchemy import ColumnElement, Connection, and_, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from lambdad.cluster.membership import Membership
from lambdad.events.ownership import ALL_PARTITIONS, OwnershipListener, WorkKind
from lambdad.store import Database, async_events
from lambdad.store.outage import reason, unavailable
from lambdad.store.schema import work_leases

log = logging.getLogger(__name__)

LEASE_SECONDS = 8.0
RENEW_EVERY = 1.0
# A lease counts as lost this long before PostgreSQL's expiry (time for users to stop their work).
SAFETY = 2.0
# How long a listener may take to stop work this node no longer owns before the lease goes anyway.
LISTENER_WAIT = 10.0

Key = tuple[WorkKind, str]
# The kind of each node's own lease row (key: the node id), which says it reaches PostgreSQL.
NODE = "Node"


def score(node_id: str, kind: WorkKind, key: str) -> int:
    """Rendezvous weight of ``node_id`` for a piece of work: the desired owner has the highest."""
    digest = hashlib.blake2b(f"{node_id}\0{kind.value}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def desired_owner(nodes: Iterable[str], kind: WorkKind, key: str) -> str:
    return max(nodes, key=lambda node: (score(node, kind, key), node))


class ClusterOwnership:
    """The ``WorkOwnership`` of a cluster node."""

    resync_every: float | None = 2.0

    def __init__(self, database: Database, membership: Membership, incarnation: str) -> None:
        self._database = database
        self._membership = membership
        self.node_id = membership.node_id
        self.incarnation = incarnation
        # What this node holds, with the monotonic moment its lease counts as lost here.
        self._held: dict[Key, float] = {}
        self._tracked: dict[WorkKind, set[str]] = {WorkKind.ASYNC_PARTITION: set(ALL_PARTITIONS)}
        self._announced: frozenset[Key] = frozenset()
        self._listeners: list[OwnershipListener] = []
        # Held keys that belong elsewhere now: their rows go once the listeners stopped their work.
        self._letting_go: set[Key] = set()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # The port -------------------------------------------------------------------------------------------

    def owns(self, kind: WorkKind, key: str) -> bool:
        until = self._held.get((kind, key))
        return until is not None and until > time.monotonic()

    def track(self, kind: WorkKind, keys: Iterable[str]) -> None:
        keys = set(keys)
        if keys != self._tracked.get(kind):
            self._tracked[kind] = keys
            self._wake.set()

    def subscribe(self, listener: OwnershipListener) -> None:
        self._listeners.append(listener)

    def owned(self) -> dict[WorkKind, list[str]]:
        now = time.monotonic()
        answer: dict[WorkKind, list[str]] = {kind: [] for kind in WorkKind}
        for (kind, key), until in self._held.items():
            if until > now:
                answer[kind].append(key)
        for kind, keys in answer.items():
            keys.sort(key=lambda key: (len(key), key) if kind is WorkKind.ASYNC_PARTITION else (0, key))
        return answer

    def partitions(self) -> list[int] | None:
        return sorted(int(key) for key in self.owned()[WorkKind.ASYNC_PARTITION])

    def heartbeat_owns(self) -> dict[str, list[str]]:
        """``Owns`` as a heartbeat reports it."""
        return {kind.value: keys for kind, keys in self.owned().items()}

    # Start and stop -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._membership.subscribe(self._wake.set)
        self._tasks = [
            asyncio.create_task(self._passes(), name="ownership passes"),
            asyncio.create_task(self._announcements(), name="ownership announcements"),
        ]

    async def halt(self) -> None:
        """Stop renewing, taking and telling (before the users stop their work at shutdown)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def stop(self) -> None:
        """Let go of everything (after the users stopped their work): the others take it at once."""
        await self.halt()
        self._held.clear()
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(self._release_all)

    # Passes ---------------------------------------------------------------------------------------------

    async def _passes(self) -> None:
        # Hear the other nodes' heartbeats first, so as not to take, for a moment, what is theirs.
        await asyncio.sleep(RENEW_EVERY * 1.5)
        while True:
            self._wake.clear()
            try:
                await self._pass()
            except Exception as error:  # PostgreSQL away: the leases lapse here before they do there
                log.warning("work leases not renewed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RENEW_EVERY)

    async def _pass(self) -> None:
        """Renew and take (the listeners never hold this up: renewals must not wait for pollers)."""
        live = {node.node_id for node in self._membership.live()}
        tracked = {kind: frozenset(keys) for kind, keys in self._tracked.items()}
        started = time.monotonic()
        held, wanted = await anyio.to_thread.run_sync(self._renew_and_take, live, tracked)
        until = started + LEASE_SECONDS - SAFETY
        self._held = {key: until for key in held & wanted}
        self._letting_go = held - wanted
        self._changed.set()

    async def _announcements(self) -> None:
        """Tell the users what changed (a pass, or a lease that lapsed here without one: PostgreSQL
        unreachable), then delete the rows of keys they stopped working on."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), RENEW_EVERY / 2)
            self._changed.clear()
            try:
                await self._announce()
                letting_go = {key for key in self._letting_go if key not in self._held}
                if letting_go:
                    await anyio.to_thread.run_sync(self._release, letting_go)
                    self._letting_go -= letting_go
                    log.info("let go of %s", _describe(letting_go))
            except Exception as error:
                log.warning("work leases not let go: %s", error)

    async def _announce(self) -> None:
        """Call the listeners if what this node owns changed since they last heard."""
        now = time.monotonic()
        owned = frozenset(key for key, until in self._held.items() if until > now)
        if owned == self._announced:
            return
        gained, lost = owned - self._announced, self._announced - owned
        self._announced = owned
        if gained:
            log.info("now owns %s", _describe(gained))
        if lost:
            log.info("no longer owns %s", _describe(lost))
        self._membership.beat_soon()
        for listener in self._listeners:
            try:
                result = listener()
                if result is not None:
                    await asyncio.wait_for(result, LISTENER_WAIT)
            except Exception as error:
                if unavailable(error):  # the listener tries again at the next change or resync
                    log.warning("a work ownership listener found the database unavailable: %s", reason(error))
                else:
                    log.exception("a work ownership listener failed")

    # PostgreSQL -----------------------------------------------------------------------------------------

    def _mine(self) -> ColumnElement[bool]:
        return and_(work_leases.c.node_id == self.node_id, work_leases.c.incarnation == self.incarnation)

    def _renew_and_take(
        self, live: set[str], tracked: dict[WorkKind, frozenset[str]]
    ) -> tuple[set[Key], set[Key]]:
        """Renew this node's leases (its node lease too), work out what it should own, and take what of
        that is free; (what it holds now, what it should own)."""
        lease = timedelta(seconds=LEASE_SECONDS)
        with self._database.write() as connection:
            renewed = connection.execute(
                update(work_leases)
                .where(self._mine())
                .values(lease_until=func.now() + lease)
                .returning(work_leases.c.kind, work_leases.c.key)
            )
            held: set[Key] = set()
            for kind, key in renewed:
                if kind != NODE:
                    held.add((WorkKind(kind), key))
            self._renew_node(connection, lease)
            # Eligible: heard over NATS and renewing leases in PostgreSQL (a node cut off from either
            # cannot own work; one that merely died is out as soon as its node lease lapsed).
            healthy = {
                str(row[0])
                for row in connection.execute(
                    select(work_leases.c.key).where(
                        work_leases.c.kind == NODE, work_leases.c.lease_until > func.now()
                    )
                )
            }
            eligible = (live & healthy) | {self.node_id}
            wanted = {
                (kind, key)
                for kind, keys in tracked.items()
                for key in keys
                if desired_owner(eligible, kind, key) == self.node_id
            }
            for key in sorted(wanted - held):
                if self._take(connection, key, lease):
                    held.add(key)
        return held, wanted

    def _renew_node(self, connection: Connection, lease: timedelta) -> None:
        """This node's own lease: proof to the others that it reaches PostgreSQL."""
        statement = pg_insert(work_leases).values(
            kind=NODE,
            key=self.node_id,
            node_id=self.node_id,
            incarnation=self.incarnation,
            lease_until=func.now() + lease,
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[work_leases.c.kind, work_leases.c.key],
                set_={"incarnation": self.incarnation, "lease_until": statement.excluded.lease_until},
            )
        )

    def _take(self, connection: Connection, key: Key, lease: timedelta) -> bool:
        kind, name = key
        where = and_(work_leases.c.kind == kind.value, work_leases.c.key == name)
        row = connection.execute(
            select(work_leases.c.node_id, work_leases.c.incarnation, work_leases.c.lease_until < func.now())
            .where(where)
            .with_for_update()
        ).first()
        if row is None:
            taken = connection.execute(
                pg_insert(work_leases)
                .values(
                    kind=kind.value,
                    key=name,
                    node_id=self.node_id,
                    incarnation=self.incarnation,
                    lease_until=func.now() + lease,
                )
                .on_conflict_do_nothing()
                .returning(work_leases.c.key)
            )
            return taken.first() is not None
        holder, incarnation, lapsed = row
        if not lapsed and holder != self.node_id:
            return False  # still someone else's: it lets go when it sees this node is the desired owner
        connection.execute(
            update(work_leases)
            .where(where)
            .values(node_id=self.node_id, incarnation=self.incarnation, lease_until=func.now() + lease)
        )
        if kind is WorkKind.ASYNC_PARTITION:
            released = async_events.release_partition(connection, int(name), incarnation)
            if released:
                log.info("released %d Event invocation(s) of partition %s held by %s", released, name, holder)
        return True

    def _release(self, keys: set[Key]) -> None:
        with self._database.write() as connection:
            connection.execute(
                delete(work_leases).where(
                    self._mine(),
                    tuple_(work_leases.c.kind, work_leases.c.key).in_(
                        [(kind.value, key) for kind, key in keys]
                    ),
                )
            )

    def _release_all(self) -> None:
        with self._database.write() as connection:
            connection.execute(delete(work_leases).where(self._mine()))


def _describe(keys: Iterable[Key]) -> str:
    by_kind: dict[str, list[str]] = {}
    for kind, key in sorted(keys):
        by_kind.setdefault(kind.value, []).append(key)
    return "; ".join(f"{kind} {', '.join(names)}" for kind, names in by_kind.items())
