"""Code packages every node can read: kept in the cluster's PostgreSQL, cached on each node's disk.

Why PostgreSQL rather than NATS's object store or an S3-compatible store: a package is only worth
anything with the record that names it, and both then live in one engine that operators already back up
and restore together; nothing else has to run, and removing a package is a ``DELETE`` with the same view
of which records exist. Packages are at most 50 MB zipped (AWS's direct-upload limit; 250 MB unzipped is
the unpacked size) and are read once per node (``CodeStore.local`` caches them), so PostgreSQL's
throughput is not the limit: a cold start on a node that never saw the function pays one read.

A package is cut into 1 MiB chunks (rows of ``code_package_chunks``) so that neither side holds a whole
zip as one value; it is inserted in one transaction, so a reader sees all of it or none.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from lambdad.store import Database
from lambdad.store.schema import code_package_chunks, code_packages

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# An unreferenced package stays this long after its last store: longer than any create or update takes
# between storing its package and committing the record that names it.
GRACE = timedelta(minutes=15)


class PostgresPackages:
    """The cluster's ``PackageMirror``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def publish(self, sha256_hex: str, data: bytes) -> None:
        now = datetime.now(UTC)
        with self._database.write() as connection:
            refreshed = connection.execute(
                update(code_packages).where(code_packages.c.sha256 == sha256_hex).values(stored_at=now)
            ).rowcount
            if refreshed:
                return
            # Two nodes storing the same new package: the second one's insert does nothing.
            inserted = connection.execute(
                pg_insert(code_packages)
                .values(sha256=sha256_hex, size=len(data), stored_at=now)
                .on_conflict_do_nothing()
            ).rowcount
            if not inserted:
                return
            connection.execute(
                insert(code_package_chunks),
                [
                    {"sha256": sha256_hex, "seq": seq, "data": data[start : start + CHUNK]}
                    for seq, start in enumerate(range(0, max(len(data), 1), CHUNK))
                ],
            )

    def fetch(self, sha256_hex: str, out: BinaryIO) -> bool:
        with self._database.read() as connection:
            rows = connection.execution_options(yield_per=4).execute(
                select(code_package_chunks.c.data)
                .where(code_package_chunks.c.sha256 == sha256_hex)
                .order_by(code_package_chunks.c.seq)
            )
            found = False
            for (data,) in rows:
                out.write(data)
                found = True
        if found:
            log.info("fetched code package %s from the cluster", sha256_hex[:12])
        return found

    def collect(self, in_use: set[str]) -> int:
        cutoff = datetime.now(UTC) - GRACE
        with self._database.write() as connection:
            stale = {
                sha
                for (sha,) in connection.execute(
                    select(code_packages.c.sha256).where(code_packages.c.stored_at < cutoff)
                )
            } - in_use
            if stale:
                connection.execute(delete(code_packages).where(code_packages.c.sha256.in_(stale)))
        if stale:
            log.info("removed %d code package(s) no record names from the cluster's store", len(stale))
        return len(stale)
