"""Code packages in the cluster's PostgreSQL: stored once, fetched whole and checked, removed only once no
record names them and nobody stored them lately."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from lambdad.cluster.code import CHUNK, PostgresPackages
from lambdad.store import CodeStore, Database
from lambdad.store.schema import code_package_chunks, code_packages


def test_a_package_stored_by_one_node_is_fetched_once_by_another(postgres: Database, tmp_path: Path) -> None:
    data = os.urandom(CHUNK * 2 + 17)  # three chunks
    first = CodeStore(tmp_path / "a", PostgresPackages(postgres))
    digest = first.put(data)
    first.put(data)  # idempotent: still one copy
    with postgres.read() as connection:
        assert connection.execute(select(func.count()).select_from(code_package_chunks)).scalar() == 3
    second = CodeStore(tmp_path / "b", PostgresPackages(postgres))
    assert not second.path(digest).exists()
    assert second.local(digest).read_bytes() == data
    assert second.read(digest) == data
    with pytest.raises(FileNotFoundError):
        second.local(hashlib.sha256(b"never stored").hexdigest())


def test_a_damaged_package_is_refused_and_not_kept(postgres: Database, tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "a", PostgresPackages(postgres))
    digest = store.put(b"zip bytes")
    with postgres.write() as connection:
        connection.execute(update(code_package_chunks).values(data=b"tampered"))
    other = CodeStore(tmp_path / "b", PostgresPackages(postgres))
    with pytest.raises(OSError, match="damaged"):
        other.local(digest)
    assert not other.path(digest).exists() and not list((tmp_path / "b").glob("*/.incoming-*"))


def test_only_unnamed_packages_stored_before_the_grace_period_are_collected(
    postgres: Database, tmp_path: Path
) -> None:
    mirror = PostgresPackages(postgres)
    store = CodeStore(tmp_path / "a", mirror)
    old_named, old_unnamed, fresh = (store.put(data) for data in (b"named", b"unnamed", b"fresh"))
    with postgres.write() as connection:
        connection.execute(
            update(code_packages)
            .where(code_packages.c.sha256.in_([old_named, old_unnamed]))
            .values(stored_at=datetime.now(UTC) - timedelta(hours=1))
        )
    assert mirror.collect({old_named}) == 1
    with postgres.read() as connection:
        left = set(connection.execute(select(code_packages.c.sha256)).scalars())
        chunks = set(connection.execute(select(code_package_chunks.c.sha256)).scalars())
    assert left == chunks == {old_named, fresh}
    # Storing it again (a create on some node) refreshes it: not collected while its record commits.
    store.put(b"named")
    assert mirror.collect(set()) == 0
    assert io.BytesIO(store.read(old_named)).read() == b"named"
