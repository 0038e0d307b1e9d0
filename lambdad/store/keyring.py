"""The key ring that seals lambdad's secrets at rest: access keys' secrets, environment variables, signing
keys. Nothing secret is written under the data directory in plain text.

The ring is a file *outside* the data directory (``--key-file``, ``LAMBDAD_KEY_FILE``; default
``~/.config/lambdad/keyring``), mode 0600, one base64 key of 32 bytes per line, newest first: a copy of
the data directory or of the database alone reveals no secret. Every value is sealed with AES-256-GCM
(``cryptography``) under the newest key and opened with whichever key sealed it, so a key is rotated by
putting a new first line and keeping the old ones until every value has been sealed again. A sealed value
is bound to its purpose (the AEAD's associated data): one moved to another field does not open there.

Every node of a cluster reads the same ring (the operator copies the file, as with any shared secret);
``KeyRing.key_id`` lets a node check that its ring is the cluster's before it serves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Where the ring lives when no path is given: in the user's configuration, beside other credentials.
DEFAULT_KEY_FILE = Path("~/.config/lambdad/keyring")
_PREFIX = "k1"
_NONCE_BYTES = 12


class KeyRingError(Exception):
    """The ring cannot be read, or a sealed value cannot be opened with it (wrong ring, altered value)."""


@dataclass(frozen=True)
class _Key:
    id: str  # 8 hex digits, derived from the key: names it in sealed values without revealing it
    cipher: AESGCM
    secret: bytes


def _key(secret: bytes) -> _Key:
    key_id = hmac.new(secret, b"lambdad key id", hashlib.sha256).hexdigest()[:8]
    return _Key(key_id, AESGCM(secret), secret)


class KeyRing:
    """Seals and opens values with the keys of one ring (the first key seals)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise KeyRingError("a key ring needs at least one key")
        self._keys = [_key(secret) for secret in keys]
        self._by_id = {key.id: key for key in self._keys}

    @classmethod
    def open(cls, path: Path | str = DEFAULT_KEY_FILE) -> KeyRing:
        """The ring in ``path``, made (one new key, 0600, its directory 0700) if there is none yet."""
        path = Path(path).expanduser()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another server made it first: read theirs
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        try:
            lines = path.read_text().split()
        except OSError as error:
            raise KeyRingError(f"cannot read the key ring {path}: {error.strerror}") from error
        keys = []
        for number, line in enumerate(lines, 1):
            try:
                key = base64.b64decode(line, validate=True)
            except binascii.Error:
                key = b""
            if len(key) != 32:
                raise KeyRingError(f"{path}, key {number}: not 32 bytes in base64")
            keys.append(key)
        return cls(keys)

    @property
    def key_id(self) -> str:
        """The id of the key that seals: equal on every node that reads the same ring."""
        return self._keys[0].id

    def seal(self, plaintext: bytes, purpose: str) -> str:
        """``plaintext`` encrypted under the newest key, as text safe for any column."""
        key = self._keys[0]
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = key.cipher.encrypt(nonce, plaintext, purpose.encode())
        return f"{_PREFIX}:{key.id}:{base64.b64encode(nonce + sealed).decode()}"

    def open_sealed(self, token: str, purpose: str) -> bytes:
        """What ``seal(plaintext, purpose)`` sealed; KeyRingError if this ring cannot open it."""
        try:
            prefix, key_id, data = token.split(":", 2)
            raw = base64.b64decode(data, validate=True)
        except (ValueError, binascii.Error) as error:
            raise KeyRingError("not a sealed value") from error
        key = self._by_id.get(key_id)
        if prefix != _PREFIX or key is None:
            raise KeyRingError(f"sealed with key {key_id}, which is not in this key ring")
        try:
            return key.cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode())
        except InvalidTag as error:
            raise KeyRingError(f"a value sealed for {purpose!r} was altered or belongs elsewhere") from error

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (HMAC keys such as the code links' signing key), stable for as
        long as the ring's first key is."""
        return hmac.new(self._keys[0].secret, purpose.encode(), hashlib.sha256).digest()
