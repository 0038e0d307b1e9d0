"""Secrets at rest: a function's environment variables sealed with the key ring (``keyring.py``), and the
check that the ring a server starts with is the one its data was sealed with.

Every version's variables are sealed (all of them, ``KMSKeyArn`` or not: on AWS too they are always
encrypted at rest, with the Lambda service key unless a customer key is named), bound to the function
(purpose ``env:REGION:NAME``), so a sealed value copied into another function's row does not open
there. The ring travels with the connection (``Database(url, key_ring)``), so the queries that store
and read versions seal and open without every caller passing it.

Rows written in plain text before this existed, or sealed under a key since rotated out of first place,
are sealed again at start-up (``open_store``), not lazily on read: a plain value must not stay on disk
until its function happens to be updated. On SQLite the database is then vacuumed, so the plain text does
not linger in free pages either.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from lambdad.store.database import KEY_RING_OPTION, Database
from lambdad.store.keyring import KeyRing, KeyRingError
from lambdad.store.schema import function_versions, key_ring

log = logging.getLogger(__name__)

_PROOF = b"lambdad key ring"
_PROOF_PURPOSE = "key-ring"


class RingRefused(Exception):
    """The server's key ring is not the one its data was sealed with: the message says what to do."""


def ring_of(connection: Connection) -> KeyRing | None:
    """The key ring the connection's database carries, or None (kept as given)."""
    ring = connection.get_execution_options().get(KEY_RING_OPTION)
    return ring if isinstance(ring, KeyRing) else None


def environment_purpose(region: str, name: str) -> str:
    """What a function's variables are bound to: they open for this function only."""
    return f"env:{region}:{name}"


def seal_environment(ring: KeyRing | None, region: str, name: str, variables: dict[str, str]) -> Any:
    """The ``environment`` member of a version's ``config`` column: a sealed token (text), or the
    variables as given without a ring."""
    if ring is None:
        return dict(variables)
    plaintext = json.dumps(variables, separators=(",", ":"), sort_keys=True).encode()
    return ring.seal(plaintext, environment_purpose(region, name))


def open_environment(ring: KeyRing | None, region: str, name: str, stored: Any) -> dict[str, str]:
    """The variables ``seal_environment`` stored (plain ones, from before sealing, as they are)."""
    if isinstance(stored, dict):
        return {str(k): str(v) for k, v in stored.items()}
    if ring is None:
        raise KeyRingError(f"the environment of {name} ({region}) is sealed and no key ring was given")
    opened = json.loads(ring.open_sealed(str(stored), environment_purpose(region, name)))
    return {str(k): str(v) for k, v in opened.items()}


def _sealed_key(stored: Any) -> str | None:
    """The id of the key a stored value was sealed with; None for a plain one."""
    return str(stored).split(":", 2)[1] if isinstance(stored, str) and stored.count(":") >= 2 else None


def open_store(database: Database, ring: KeyRing, ring_path: Path | str) -> int:
    """Check that ``ring`` is the one the data was sealed with (recording it at first start), then seal
    what is plain or sealed under an older key; returns how many versions were sealed again.

    Raises RingRefused, in one line for the operator, when the ring cannot open what is stored.
    """
    with database.write() as connection:
        row = connection.execute(select(key_ring).where(key_ring.c.id == 1)).first()
        if row is not None:
            try:
                ring.open_sealed(row.proof, _PROOF_PURPOSE)
            except KeyRingError:
                raise RingRefused(
                    f"lambdad's key ring ({ring_path}, key {ring.key_id}) is not the one this data was "
                    f"sealed with (key {row.key_id}): start lambdad with --key-file (or LAMBDAD_KEY_FILE) "
                    "naming that ring (on a cluster, a copy of the ring the other nodes read); a new "
                    "ring cannot open the secrets already stored"
                ) from None
    resealed, had_plain = _reseal(database, ring)
    values = {
        "key_id": ring.key_id,
        "proof": ring.seal(_PROOF, _PROOF_PURPOSE),
        "recorded_at": datetime.now(UTC),
    }
    try:
        with database.write() as connection:
            current = connection.execute(select(key_ring.c.key_id).where(key_ring.c.id == 1)).scalar()
            if current is None:
                connection.execute(insert(key_ring).values(id=1, **values))
            elif current != ring.key_id:  # rotated: everything is sealed under the new first key now
                connection.execute(update(key_ring).where(key_ring.c.id == 1).values(**values))
    except IntegrityError:  # a new cluster's nodes start together: another recorded its ring first
        return resealed + open_store(database, ring, ring_path)
    if had_plain and database.is_sqlite:
        _vacuum(database)
    return resealed


def _reseal(database: Database, ring: KeyRing) -> tuple[int, bool]:
    """Seal, one version per transaction, every environment not sealed under the ring's first key."""
    with database.read() as connection:
        rows = connection.execute(
            select(
                function_versions.c.account,
                function_versions.c.region,
                function_versions.c.function_name,
                function_versions.c.version,
                function_versions.c.config,
            )
        ).all()
    stale = [row for row in rows if _sealed_key(dict(row.config).get("environment", {})) != ring.key_id]
    had_plain = False
    for row in stale:
        key = (
            function_versions.c.account == row.account,
            function_versions.c.region == row.region,
            function_versions.c.function_name == row.function_name,
            function_versions.c.version == row.version,
        )
        with database.write() as connection:
            config = connection.execute(select(function_versions.c.config).where(*key)).scalar()
            if config is None:
                continue  # deleted meanwhile
            config = dict(config)
            stored = config.get("environment", {})
            if _sealed_key(stored) == ring.key_id:
                continue  # another node sealed it meanwhile
            had_plain = had_plain or isinstance(stored, dict)
            variables = open_environment(ring, row.region, row.function_name, stored)
            config["environment"] = seal_environment(ring, row.region, row.function_name, variables)
            connection.execute(update(function_versions).where(*key).values(config=config))
    if stale:
        log.info("sealed the environment variables of %d function version(s) with the key ring", len(stale))
    return len(stale), had_plain


def _vacuum(database: Database) -> None:
    """Rewrite the SQLite file (and empty its write-ahead log), so that the plain values just sealed
    are not left behind in free pages."""
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()
