"""PostgreSQL row changes for the event-source benchmark (the functions ``bench.brokers`` describes).

Sources are tables ``bench_<hex> (id bigint PRIMARY KEY, body text)`` in a database ``lambdad_bench``
(created when missing, dropped with its last table). ``publish_many``
inserts rows in transactions of 100. The raw baseline is PostgreSQL alone: the same inserts, then the
rows read back in key order in pages of 100 (no capture), i.e. the cheapest ordered insert+read.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg

from bench.brokers import mapping_spec, rate_through_source
from lambdad.events.sources.postgresql import PostgresqlKind, table_of

SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "lambdad_bench"
PAGE = 100
BODY = '{"hello": "world"}'


def mapping_params(arn: str) -> dict[str, Any]:
    return {"EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 100}


def endpoint() -> str:
    """The bench database's URL, creating the database when missing."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            admin.execute(f"CREATE DATABASE {DATABASE}")
    return f"{SERVER}/{DATABASE}"


def drop_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def new_arn() -> str:
    """A fresh table of the bench's own."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(endpoint(), autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, body text)")
    return f"arn:aws:postgresql:us-east-1:000000000000:table/public.{name}"


def remove(arn: str) -> None:
    """Drop the table (its capture trigger goes with it); the last one takes the database with it."""
    schema, table = table_of(arn)
    with psycopg.connect(endpoint(), autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
        left = connection.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench%'").fetchone()
    if left == (0,):
        drop_database()


def publish_many(arn: str, n: int) -> None:
    """Insert ``n`` rows (transactions of 100), after the table's existing ones."""
    schema, table = table_of(arn)
    with psycopg.connect(endpoint()) as connection:
        first = connection.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {schema}.{table}").fetchone()
        start = int(first[0]) if first else 1
        for page in range(start, start + n, PAGE):
            rows = [(key, BODY) for key in range(page, min(start + n, page + PAGE))]
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {schema}.{table} (id, body) VALUES (%s, %s)", rows)
            connection.commit()


def raw_seconds(n: int) -> float:
    """Seconds PostgreSQL alone takes to insert ``n`` rows and read them back in order."""
    arn = new_arn()
    schema, table = table_of(arn)
    try:
        started = time.perf_counter()
        publish_many(arn, n)
        with psycopg.connect(endpoint(), autocommit=True) as connection:
            cursor, read = 0, 0
            page = f"SELECT id, body FROM {schema}.{table} WHERE id > %s ORDER BY id LIMIT %s"
            while read < n:
                rows = connection.execute(page, [cursor, PAGE]).fetchall()
                cursor, read = rows[-1][0], read + len(rows)
        return time.perf_counter() - started
    finally:
        remove(arn)


def source_rate(n: int, batch_size: int = PAGE) -> float:
    """Changes per second through lambdad's source: insert ``n`` rows, receive batches, ack (the source
    is opened first: opening installs capture)."""
    arn = new_arn()
    try:
        spec = mapping_spec(PostgresqlKind(), arn, endpoint(), batch_size, starting_position="TRIM_HORIZON")
        return rate_through_source(PostgresqlKind(), spec, n, lambda count, _: publish_many(arn, count))
    finally:
        remove(arn)
