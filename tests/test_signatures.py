"""The signed zip's format (lambdad.signatures): where the signature sits, what it covers."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from lambdad import signatures
from lambdad.signatures import BadSignature, Manifest, SignatureFormatError
from tests.support import make_zip

VERSION_ARN = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/release/AbCdEf1234"


def _manifest(package: bytes, **changes: object) -> Manifest:
    fields: dict[str, object] = {
        "digest": signatures.digest(package),
        "profile_version_arn": VERSION_ARN,
        "job_id": "3b3c7c8e-0000-4000-8000-000000000001",
        "job_owner": "000000000000",
        "signed_at": 1_800_000_000,
        "expires_at": 1_900_000_000,
    }
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def key() -> tuple[bytes, bytes]:
    private = signatures.new_private_key()
    return private, signatures.public_key_pem(private)


def test_a_signed_package_verifies_and_keeps_its_members(key: tuple[bytes, bytes]) -> None:
    private, public = key
    package = make_zip({"handler.py": "def handler(e, c):\n    return 1\n", "lib/data.txt": "x" * 1000})
    signed = signatures.embed(package, signatures.sign(_manifest(package), private))
    assert signatures.is_signed(signed) and not signatures.is_signed(package)
    assert signatures.verify_package(signed, public).profile_version_arn == VERSION_ARN
    # Any zip reader sees the same members; the signature is the archive comment only.
    with zipfile.ZipFile(io.BytesIO(signed)) as archive, zipfile.ZipFile(io.BytesIO(package)) as original:
        assert archive.namelist() == original.namelist()
        assert all(archive.read(n) == original.read(n) for n in archive.namelist())
        assert archive.comment.startswith(signatures.MAGIC)
    # The digest covers the package as signed: the same before and after embedding.
    assert signatures.digest(signed) == signatures.digest(package)


def test_changing_a_member_fails_the_digest(key: tuple[bytes, bytes]) -> None:
    private, public = key
    package = make_zip({"handler.py": "def handler(e, c):\n    return 'good'\n"})
    signed = signatures.embed(package, signatures.sign(_manifest(package), private))
    tampered_zip = make_zip({"handler.py": "def handler(e, c):\n    return 'evil'\n"})
    # The same signature moved onto other code.
    tampered = signatures.unsigned(tampered_zip)[:-2] + signed[len(signatures.unsigned(signed)) - 2 :]
    assert signatures.extract(tampered) == signatures.extract(signed)
    with pytest.raises(BadSignature, match="changed after it was signed"):
        signatures.verify_package(tampered, public)
    # One flipped byte inside the stored data as well.
    flipped = bytearray(signed)
    flipped[40] ^= 0xFF
    with pytest.raises(BadSignature):
        signatures.verify_package(bytes(flipped), public)


def test_another_key_or_an_altered_manifest_fails(key: tuple[bytes, bytes]) -> None:
    private, _ = key
    package = make_zip()
    envelope = signatures.sign(_manifest(package), private)
    other_public = signatures.public_key_pem(signatures.new_private_key())
    with pytest.raises(BadSignature):
        envelope.verify(other_public)
    # A manifest whose expiry was pushed back no longer matches its signature.
    forged = signatures.Envelope(_manifest(package, expires_at=2_999_999_999).to_bytes(), envelope.signature)
    with pytest.raises(BadSignature):
        signatures.verify_package(signatures.embed(package, forged), signatures.public_key_pem(private))


def test_malformed_signatures_and_non_zips_are_format_errors(key: tuple[bytes, bytes]) -> None:
    private, _ = key
    package = make_zip()
    garbled = signatures.unsigned(package)[:-2] + len(signatures.MAGIC + b"{nope").to_bytes(2, "little")
    garbled += signatures.MAGIC + b"{nope"
    with pytest.raises(SignatureFormatError):
        signatures.extract(garbled)
    wrong_alg = signatures.MAGIC + json.dumps({"alg": "none", "payload": "", "signature": ""}).encode()
    with pytest.raises(SignatureFormatError, match="ES384"):
        signatures.Envelope.from_bytes(wrong_alg)
    with pytest.raises(SignatureFormatError, match="not a zip"):
        signatures.digest(b"plain text, not a zip")
    signed = signatures.embed(package, signatures.sign(_manifest(package), private))
    with pytest.raises(SignatureFormatError, match="already has a signature"):
        signatures.embed(signed, signatures.sign(_manifest(package), private))


def test_an_unsigned_package_has_no_envelope_even_with_a_comment() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "a")
        archive.comment = b"built by some tool"
    assert signatures.extract(buffer.getvalue()) is None
    assert signatures.extract(make_zip()) is None
