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


def test_garbage_collection_removes_unreferenced_and_partial_files(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    kept, dropped = store.put(b"kept"), store.put(b"dropped")
    partial = store.path(kept).parent / ".incoming-abc"
    partial.write_bytes(b"half a zi")
    assert store.collect_garbage({kept}) == 2
    assert store.digests() == {kept}
    assert not partial.exists()
    assert not store.path(dropped).exists()
