"""PostgreSQL row changes for the event-source benchmark.

``PostgresTable`` is a table in a database of the bench's own (dropped afterwards) with the ARN a mapping
reads; ``publish_many(n)`` inserts rows. ``raw_rate`` is PostgreSQL's own insert+read rate for the same
rows (inserts in transactions of 100, reads in pages of 100 by key, no capture), and ``source_rate`` the
rows' changes read through lambdad's source (trigger capture, change log, positions).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from lambdad.events.sources import SourceSpec
from lambdad.events.sources.postgresql import PostgresqlKind

SERVER = "postgresql://postgres@127.0.0.1:5432"
PAGE = 100


@dataclass
class PostgresTable:
    """``public.items (id bigint PRIMARY KEY, body text)`` in its own database."""

    endpoint: str
    name: str = "items"
    inserted: int = 0

    @property
    def arn(self) -> str:
        return f"arn:aws:postgresql:us-east-1:000000000000:table/public.{self.name}"

    def publish_many(self, n: int, body: str = '{"hello": "world"}') -> float:
        """Insert ``n`` rows (transactions of 100); the seconds it took."""
        started = time.perf_counter()
        with psycopg.connect(self.endpoint) as connection:
            for start in range(self.inserted, self.inserted + n, PAGE):
                rows = [(key, body) for key in range(start, min(self.inserted + n, start + PAGE))]
                with connection.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {self.name} (id, body) VALUES (%s, %s)", rows)
                connection.commit()
        self.inserted += n
        return time.perf_counter() - started


@contextmanager
def table(server: str = SERVER) -> Iterator[PostgresTable]:
    """A table in a database of the bench's own, dropped afterwards."""
    database = f"lambdad_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    target = PostgresTable(f"{server}/{database}")
    try:
        with psycopg.connect(target.endpoint, autocommit=True) as connection:
            connection.execute(f"CREATE TABLE {target.name} (id bigint PRIMARY KEY, body text)")
        yield target
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {database} WITH (FORCE)")


def raw_rate(n: int = 5000, server: str = SERVER) -> float:
    """Rows per second PostgreSQL itself inserts and reads back in order (no capture)."""
    with table(server) as target:
        started = time.perf_counter()
        target.publish_many(n)
        with psycopg.connect(target.endpoint, autocommit=True) as connection:
            cursor, read = -1, 0
            while read < n:
                rows = connection.execute(
                    f"SELECT id, body FROM {target.name} WHERE id > %s ORDER BY id LIMIT %s", [cursor, PAGE]
                ).fetchall()
                cursor, read = rows[-1][0], read + len(rows)
        return n / (time.perf_counter() - started)


def source_rate(n: int = 5000, server: str = SERVER) -> float:
    """Changes per second through lambdad's source: insert ``n`` rows, receive batches of 100, ack."""
    with table(server) as target:
        return n / asyncio.run(_through_source(target, n))


async def _through_source(target: PostgresTable, n: int) -> float:
    spec = SourceSpec(
        uuid=str(uuid.uuid4()),
        event_source_arn=target.arn,
        endpoint=target.endpoint,
        region="us-east-1",
        account="000000000000",
        batch_size=PAGE,
        starting_position="TRIM_HORIZON",
    )
    source = PostgresqlKind().source(spec)
    await source.open()  # installs capture before the rows go in
    try:
        started = time.perf_counter()
        await asyncio.to_thread(target.publish_many, n)
        consumed = 0
        while consumed < n:
            batch = await source.receive(PAGE, 5)
            source.event(batch)
            await source.ack(batch)
            consumed += len(batch)
        return time.perf_counter() - started
    finally:
        await source.close()
