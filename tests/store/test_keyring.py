"""The key ring: sealed values open only with their ring and purpose; rings are made once and rotate."""

from __future__ import annotations

import base64
import secrets
import stat
from pathlib import Path

import pytest

from lambdad.store.keyring import KeyRing, KeyRingError


def test_a_new_ring_is_made_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keyring"
    ring = KeyRing.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    sealed = ring.seal(b"secret", "access-key")
    assert b"secret" not in sealed.encode()
    assert KeyRing.open(path).open_sealed(sealed, "access-key") == b"secret"


def test_a_value_opens_only_for_its_purpose_and_unaltered(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path / "ring")
    sealed = ring.seal(b"value", "env:f1")
    with pytest.raises(KeyRingError, match="altered or belongs elsewhere"):
        ring.open_sealed(sealed, "env:f2")
    prefix, key_id, data = sealed.split(":")
    raw = bytearray(base64.b64decode(data))
    raw[-1] ^= 1
    with pytest.raises(KeyRingError):
        ring.open_sealed(f"{prefix}:{key_id}:{base64.b64encode(bytes(raw)).decode()}", "env:f1")


def test_another_ring_cannot_open(tmp_path: Path) -> None:
    sealed = KeyRing.open(tmp_path / "a").seal(b"x", "p")
    with pytest.raises(KeyRingError, match="not in this key ring"):
        KeyRing.open(tmp_path / "b").open_sealed(sealed, "p")


def test_rotation_seals_with_the_new_key_and_opens_old_values(tmp_path: Path) -> None:
    path = tmp_path / "ring"
    old = KeyRing.open(path)
    sealed = old.seal(b"kept", "p")
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n" + path.read_text())
    rotated = KeyRing.open(path)
    assert rotated.key_id != old.key_id
    assert rotated.open_sealed(sealed, "p") == b"kept"
    assert rotated.seal(b"new", "p").split(":")[1] == rotated.key_id


def test_a_damaged_ring_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ring"
    path.write_text("not-a-key\n")
    with pytest.raises(KeyRingError, match="key 1: not 32 bytes"):
        KeyRing.open(path)
