"""How a signed Lambda package carries its signature: lambdad's format for the platform
``AWSLambda-SHA384-ECDSA``. Pure: no I/O, no lambdad imports.

AWS documents what Lambda checks (integrity, expiry, mismatch, revocation) and that the signature
travels inside the signed zip, but not the layout, so this module chooses one, in the spirit of AWS
Signer's SignPayload envelopes:

- **Where**: the zip's archive comment (the end-of-central-directory record's comment, up to 64 KiB).
  The members are untouched, so the code a function sees under ``/var/task`` is exactly what was
  signed, and any zip tool still reads the package.
- **What is digested**: SHA-384 of the zip's bytes with the archive comment cleared (comment length 0).
  Changing any byte of any member, the central directory or the record itself changes the digest;
  only the comment (the signature itself) is outside it. The end record used is the last one whose
  comment runs exactly to the end of the file; zip readers (Python's ``zipfile``, which unpacks code)
  take the last end-record signature in the tail, which is the same one, since a well-formed envelope
  is JSON text and cannot hide the binary bytes of another record. A package that already carries a signature
  cannot be signed again (as AWS Signer refuses "a zip file that already has a signature").
- **The envelope**: the comment is ``lambdad-signature/1 `` followed by JSON
  ``{"alg": "ES384", "payload": base64(manifest), "signature": base64(DER ECDSA)}``; the signature
  is ECDSA P-384 with SHA-384 over the manifest's exact bytes (no canonicalisation needed). The
  manifest (JSON) names the digest, the signing profile version, the signing job (what RevokeSignature
  revokes), when it was signed and until when the signature is valid (the profile's
  SignatureValidityPeriod). Only the server holding the profile's private key can make one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PLATFORM_ID = "AWSLambda-SHA384-ECDSA"
#: The comment's first bytes: what tells a signature from any other archive comment.
MAGIC = b"lambdad-signature/1 "
#: SignPayload's payloadFormat for "sign this package digest" (``lambdad sign`` sends it).
PAYLOAD_FORMAT = "application/vnd.lambdad.zip-digest.v1+json"
MANIFEST_FORMAT = "lambdad-lambda-zip-signature/1"
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF


class SignatureFormatError(ValueError):
    """Not a zip, or a signature comment that is not a well-formed envelope."""


class BadSignature(ValueError):
    """A well-formed envelope whose signature or digest does not hold: the package was altered."""


@dataclass(frozen=True)
class Manifest:
    """What a signature vouches for."""

    digest: str  # SHA-384 (hex) of the package with its comment cleared
    profile_version_arn: str  # arn:aws:signer:REGION:ACCOUNT:/signing-profiles/NAME/VERSION
    job_id: str  # the signing job: RevokeSignature's jobId
    job_owner: str  # the account that signed
    signed_at: int  # seconds since the epoch
    expires_at: int  # seconds since the epoch
    platform_id: str = PLATFORM_ID
    format: str = MANIFEST_FORMAT

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            fields = json.loads(data)
            manifest = cls(**fields)
        except (ValueError, TypeError) as error:
            raise SignatureFormatError("the signature's manifest is not well-formed") from error
        if manifest.format != MANIFEST_FORMAT or manifest.platform_id != PLATFORM_ID:
            raise SignatureFormatError("the signature is not an AWSLambda-SHA384-ECDSA signature")
        if not all(isinstance(value, str) for value in (manifest.digest, manifest.profile_version_arn)):
            raise SignatureFormatError("the signature's manifest is not well-formed")
        if not all(isinstance(value, int) for value in (manifest.signed_at, manifest.expires_at)):
            raise SignatureFormatError("the signature's manifest is not well-formed")
        return manifest


@dataclass(frozen=True)
class Envelope:
    """A signature as the package carries it; ``manifest`` is not trusted until ``verify`` says so."""

    payload: bytes
    signature: bytes

    @property
    def manifest(self) -> Manifest:
        return Manifest.from_bytes(self.payload)

    def to_bytes(self) -> bytes:
        body = {
            "alg": "ES384",
            "payload": base64.b64encode(self.payload).decode(),
            "signature": base64.b64encode(self.signature).decode(),
        }
        return MAGIC + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        if not data.startswith(MAGIC):
            raise SignatureFormatError("not a lambdad signature envelope")
        try:
            body = json.loads(data[len(MAGIC) :])
            algorithm = body.get("alg")
        except (ValueError, AttributeError) as error:
            raise SignatureFormatError("the signature envelope is not well-formed") from error
        if algorithm != "ES384":
            raise SignatureFormatError("the signature's algorithm is not ES384")
        try:
            payload = base64.b64decode(body["payload"], validate=True)
            signature = base64.b64decode(body["signature"], validate=True)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
            raise SignatureFormatError("the signature envelope is not well-formed") from error
        return cls(payload, signature)

    def verify(self, public_key_pem: bytes) -> Manifest:
        """The manifest, once its signature holds under ``public_key_pem``; BadSignature if not."""
        key = serialization.load_pem_public_key(public_key_pem)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        try:
            key.verify(self.signature, self.payload, ec.ECDSA(hashes.SHA384()))
        except InvalidSignature as error:
            raise BadSignature("the signature does not match its manifest") from error
        return self.manifest


# --- keys ------------------------------------------------------------------------------------------


def new_private_key() -> bytes:
    """A new ECDSA P-384 private key, PKCS#8 DER (to be sealed, never stored as is)."""
    key = ec.generate_private_key(ec.SECP384R1())
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(private_key_der: bytes) -> bytes:
    """The public half of a private key, PEM (what verification needs; not secret)."""
    key = serialization.load_der_private_key(private_key_der, None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(manifest: Manifest, private_key_der: bytes) -> Envelope:
    """The envelope of ``manifest``, signed with ``private_key_der``."""
    key = serialization.load_der_private_key(private_key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    payload = manifest.to_bytes()
    return Envelope(payload, key.sign(payload, ec.ECDSA(hashes.SHA384())))


# --- the zip ---------------------------------------------------------------------------------------


def _end_record(data: bytes) -> int:
    """The offset of the zip's end-of-central-directory record (the one whose comment ends the file)."""
    start = max(0, len(data) - _EOCD_SIZE - _MAX_COMMENT)
    offset = data.rfind(_EOCD, start)
    while offset >= 0:
        if len(data) >= offset + _EOCD_SIZE:
            (comment_length,) = struct.unpack_from("<H", data, offset + 20)
            if offset + _EOCD_SIZE + comment_length == len(data):
                return offset
        offset = data.rfind(_EOCD, start, offset)
    raise SignatureFormatError("not a zip file (no end of central directory record)")


def comment(data: bytes) -> bytes:
    """The zip's archive comment."""
    return data[_end_record(data) + _EOCD_SIZE :]


def unsigned(data: bytes) -> bytes:
    """The zip with its archive comment cleared: the bytes a signature's digest covers."""
    end = _end_record(data)
    return data[: end + 20] + b"\x00\x00"


def digest(data: bytes) -> str:
    """SHA-384 (hex) of the package as signed (its comment cleared)."""
    return hashlib.sha384(unsigned(data)).hexdigest()


def is_signed(data: bytes) -> bool:
    return comment(data).startswith(MAGIC)


def embed(data: bytes, envelope: Envelope) -> bytes:
    """The package with ``envelope`` as its archive comment (any other comment is dropped)."""
    if is_signed(data):
        raise SignatureFormatError("the package already has a signature")
    body = envelope.to_bytes()
    if len(body) > _MAX_COMMENT:
        raise SignatureFormatError("the signature does not fit in a zip comment")
    base = unsigned(data)
    return base[:-2] + struct.pack("<H", len(body)) + body


def extract(data: bytes) -> Envelope | None:
    """The package's signature envelope; None for a package without one (unsigned)."""
    found = comment(data)
    if not found.startswith(MAGIC):
        return None
    return Envelope.from_bytes(found)


def verify_package(data: bytes, public_key_pem_bytes: bytes) -> Manifest:
    """The manifest of a signed package, once both its signature and its digest hold."""
    envelope = extract(data)
    if envelope is None:
        raise SignatureFormatError("the package is not signed")
    manifest = envelope.verify(public_key_pem_bytes)
    if manifest.digest != digest(data):
        raise BadSignature("the package was changed after it was signed")
    return manifest
