"""Content-addressed code packages."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lambdad.store import CodeStore


def test_put_stores_by_sha256_and_is_idempotent(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    digest = store.put(b"package")
    assert digest == hashlib.sha256(b"package").hexdigest()
    assert store.put(b"package") == digest
    assert store.read(digest) == b"package"
    assert store.path(digest) == tmp_path / digest[:2] / f"{digest}.zip"
    assert store.digests() == {digest}


def test_interrupted_writes_are_removed_and_packages_kept(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    kept = store.put(b"kept")
    partial = store.path(kept).parent / ".incoming-abc"
    partial.write_bytes(b"half a zi")
    assert store.remove_incomplete() == 1
    assert store.digests() == {kept}
    assert not partial.exists()
