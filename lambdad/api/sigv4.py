"""AWS Signature Version 4, verified the way AWS verifies it, with AWS's answers for every failure.

A request is signed in its Authorization header (``AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/
aws4_request, SignedHeaders=..., Signature=...``) or, presigned, in its query string (``X-Amz-Algorithm``,
``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``).
The expected signature is computed by botocore's own signer (``botocore.auth.SigV4Auth``: canonical
request, string to sign, signing key), given exactly the headers the client said it signed, and compared
in constant time. The payload hash is the body's, or the ``x-amz-content-sha256`` the client sent, which
must then match the body (``UNSIGNED-PAYLOAD`` only over TLS, where the body cannot be changed on the
way). Session credentials (temporary keys) need their ``x-amz-security-token``, and only they may carry
one.

The secret behind an access key comes from a ``CredentialResolver`` (the identity store implements it; it
may hit the database, so it is called in a worker thread). A failure is a ``SignatureFailure`` of one
``Failure`` kind; ``aws_error`` words it as AWS does for the service's protocol, since Lambda (rest-json),
IAM and STS (query) and EC2 answer the same failure with different codes.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import quote, unquote

import anyio.to_thread
from botocore.auth import EMPTY_SHA256_HASH, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from lambdad import errors
from lambdad.errors import LambdaError
from lambdad.models import Principal

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far a request's date may be from the server's clock, either way: Lambda's answer names 5 minutes
#: ("... (20190101T001000Z - 5 min.)", ../shared/AWS_BEHAVIOUR.md), where S3 allows 15.
MAX_SKEW = timedelta(minutes=5)
#: The longest a presigned URL may be valid (AWS: 7 days).
MAX_EXPIRES = 604_800
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SigningIdentity:
    """What an access key stands for: its secret, who signs with it, and whether it may still be used."""

    secret_access_key: str
    principal: Principal
    # Temporary (session) credentials: the token the request must carry, and when they stop working.
    session_token: str | None = None
    expires_at: datetime | None = None
    active: bool = True


class KnownKey(Protocol):
    """What authentication reads of an access key: ``SigningIdentity``, or any record with its fields
    (the identity store's own)."""

    @property
    def secret_access_key(self) -> str: ...
    @property
    def principal(self) -> Principal: ...
    @property
    def session_token(self) -> str | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def active(self) -> bool: ...


class CredentialResolver(Protocol):
    """The identity store, as authentication sees it."""

    def resolve(self, access_key_id: str) -> KnownKey | None:
        """The identity of an access key, or None if no such key exists. Blocking (may hit the database)."""


class Failure(enum.Enum):
    """The ways a request fails authentication (each protocol has its own words for each)."""

    MISSING = "missing"  # no signature at all
    INCOMPLETE = "incomplete"  # a signature that is not well-formed
    UNKNOWN_KEY = "unknown key"  # no such key, an inactive one, or a token that does not go with it
    MISMATCH = "mismatch"  # the signature is not the request's
    EXPIRED_SIGNATURE = "expired signature"  # too old or too far in the future
    EXPIRED_TOKEN = "expired token"  # session credentials past their expiry


class SignatureFailure(Exception):
    """A request that is not authentic; ``aws_error`` turns it into the service's answer."""

    def __init__(self, kind: Failure, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)

# The error class for each failure, per protocol; None: the failure's own message is kept.
_ERRORS: dict[str, dict[Failure, tuple[type[LambdaError], str | None]]] = {
    "rest-json": {
        Failure.MISSING: (errors.MissingAuthenticationTokenException, "Missing Authentication Token"),
        Failure.INCOMPLETE: (errors.IncompleteSignatureException, None),
        Failure.UNKNOWN_KEY: (errors.UnrecognizedClientException, INVALID_TOKEN),
        Failure.MISMATCH: (errors.InvalidSignatureException, None),
        Failure.EXPIRED_SIGNATURE: (errors.InvalidSignatureException, None),
        Failure.EXPIRED_TOKEN: (errors.ExpiredTokenException, EXPIRED_TOKEN),
    },
    "query": {
        Failure.MISSING: (errors.MissingAuthenticationToken, "Request is missing Authentication Token"),
        Failure.INCOMPLETE: (errors.IncompleteSignature, None),
        Failure.UNKNOWN_KEY: (errors.InvalidClientTokenId, INVALID_TOKEN),
        Failure.MISMATCH: (errors.SignatureDoesNotMatch, None),
        Failure.EXPIRED_SIGNATURE: (errors.SignatureDoesNotMatch, None),
        Failure.EXPIRED_TOKEN: (errors.ExpiredToken, EXPIRED_TOKEN),
    },
    "ec2": {
        Failure.MISSING: (errors.MissingAuthenticationToken, "Request is missing Authentication Token"),
        Failure.INCOMPLETE: (errors.IncompleteSignature, None),
        Failure.UNKNOWN_KEY: (
            errors.AuthFailure,
            "AWS was not able to validate the provided access credentials",
        ),
        Failure.MISMATCH: (
            errors.AuthFailure,
            "AWS was not able to validate the provided access credentials",
        ),
        Failure.EXPIRED_SIGNATURE: (errors.RequestExpired, "Request has expired."),
        Failure.EXPIRED_TOKEN: (errors.RequestExpired, "Request has expired."),
    },
}


def aws_error(failure: SignatureFailure, protocol: str) -> LambdaError:
    """The error AWS answers ``failure`` with in a service of ``protocol``."""
    error, message = _ERRORS.get(protocol, _ERRORS["rest-json"])[failure.kind]
    return error(message or failure.message)


@dataclass(frozen=True)
class SignedRequest:
    """A request as it arrived: the raw path and query (still percent-encoded), headers with lower-cased
    names (repeated ones joined by commas), the whole body, and whether it came over TLS."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes = b""
    secure: bool = False


class Authenticator:
    """Verifies SigV4 signatures against the keys a ``CredentialResolver`` knows."""

    def __init__(self, resolver: CredentialResolver, clock: Callable[[], datetime] | None = None) -> None:
        self._resolver = resolver
        self._clock = clock or (lambda: datetime.now(UTC))

    async def authenticate(
        self, request: SignedRequest, service: str, read_body: Callable[[], Awaitable[bytes]] | None = None
    ) -> Principal:
        """Who signed ``request`` for ``service`` (its signing name), or SignatureFailure.

        ``read_body`` (if given) reads the body, once everything but the signature checked out; else the
        request's ``body`` is the body.
        """
        signature = _parse(request)
        _check_scope(signature, service)
        now = self._clock()
        _check_time(signature, now)
        identity = await anyio.to_thread.run_sync(self._resolver.resolve, signature.access_key_id)
        if identity is None or not identity.active:
            raise SignatureFailure(Failure.UNKNOWN_KEY, INVALID_TOKEN)
        token = signature.security_token
        if identity.session_token is None:
            if token is not None:  # a token is only valid with the temporary key it was issued with
                raise SignatureFailure(Failure.UNKNOWN_KEY, INVALID_TOKEN)
        elif token is None or not hmac.compare_digest(token.encode(), identity.session_token.encode()):
            raise SignatureFailure(Failure.UNKNOWN_KEY, INVALID_TOKEN)
        if identity.expires_at is not None and identity.expires_at <= now:
            raise SignatureFailure(Failure.EXPIRED_TOKEN, EXPIRED_TOKEN)
        if read_body is not None:
            request = dataclasses.replace(request, body=await read_body())
        expected = _expected_signature(request, signature, identity.secret_access_key)
        if not hmac.compare_digest(expected.encode(), signature.signature.encode()):
            raise SignatureFailure(Failure.MISMATCH, MISMATCH)
        principal = identity.principal
        if principal.access_key_id is None:
            principal = dataclasses.replace(principal, access_key_id=signature.access_key_id)
        return principal


@dataclass(frozen=True)
class _Signature:
    """The parts of a signature, from the Authorization header or a presigned URL's query."""

    access_key_id: str
    date: str  # the credential scope's YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date (or Date), as YYYYMMDDTHHMMSSZ
    security_token: str | None
    presigned_expires: int | None = None  # seconds, for a presigned URL
    # The query string to sign: a presigned URL's without its X-Amz-Signature.
    signed_query: str = ""


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs = []
    for pair in filter(None, query_string.split("&")):
        key, _, value = pair.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _parse(request: SignedRequest) -> _Signature:
    pairs = _query_pairs(request.query_string)
    query = dict(pairs)
    authorization = request.headers.get("authorization")
    if authorization is None and "X-Amz-Algorithm" not in query and "X-Amz-Signature" not in query:
        raise SignatureFailure(Failure.MISSING, "Missing Authentication Token")
    if authorization is not None:
        return _parse_header(request, authorization)
    return _parse_presigned(request, query, pairs)


def _parse_header(request: SignedRequest, authorization: str) -> _Signature:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureFailure(
            Failure.INCOMPLETE, f"Unsupported AWS 'algorithm': '{algorithm}'. Authorization={authorization}"
        )
    parts: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        name, equals, value = item.partition("=")
        if not equals:
            raise SignatureFailure(
                Failure.INCOMPLETE,
                f"'{item}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                f"'{authorization}'.",
            )
        parts[name] = value
    timestamp = _request_timestamp(request.headers)
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not parts.get(name)
    ]
    if timestamp is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise SignatureFailure(Failure.INCOMPLETE, " ".join(problems) + f" Authorization={authorization}")
    assert timestamp is not None
    access_key_id, date, region, service = _credential(parts["Credential"])
    return _Signature(
        access_key_id,
        date,
        region,
        service,
        _header_names(parts["SignedHeaders"]),
        parts["Signature"],
        timestamp,
        request.headers.get("x-amz-security-token"),
        signed_query=_canonical_query(_query_pairs(request.query_string)),
    )


def _parse_presigned(
    request: SignedRequest, query: dict[str, str], pairs: list[tuple[str, str]]
) -> _Signature:
    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
    missing = [
        f"AWS query-string parameters must include '{name}'." for name in required if not query.get(name)
    ]
    if missing:
        raise SignatureFailure(
            Failure.INCOMPLETE, " ".join(missing) + " Re-examine the query-string parameters."
        )
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureFailure(
            Failure.INCOMPLETE, f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'."
        )
    expires_text = query.get("X-Amz-Expires", "")
    if not expires_text.isdigit() or not 0 < int(expires_text) <= MAX_EXPIRES:
        raise SignatureFailure(
            Failure.INCOMPLETE,
            f"X-Amz-Expires must be from 1 to {MAX_EXPIRES} seconds (a week), got '{expires_text}'.",
        )
    timestamp = query["X-Amz-Date"]
    if _parse_timestamp(timestamp) is None:
        raise SignatureFailure(
            Failure.INCOMPLETE, f"X-Amz-Date must be in the ISO8601 basic format, got '{timestamp}'."
        )
    access_key_id, date, region, service = _credential(query["X-Amz-Credential"])
    return _Signature(
        access_key_id,
        date,
        region,
        service,
        _header_names(query["X-Amz-SignedHeaders"]),
        query["X-Amz-Signature"],
        timestamp,
        query.get("X-Amz-Security-Token"),
        presigned_expires=int(expires_text),
        signed_query=_canonical_query([(k, v) for k, v in pairs if k != "X-Amz-Signature"]),
    )


def _header_names(signed: str) -> tuple[str, ...]:
    """SignedHeaders' names, as the canonical request has them (lower case, trimmed)."""
    return tuple(name.strip().lower() for name in signed.split(";") if name.strip())


def _credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise SignatureFailure(
            Failure.INCOMPLETE,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _request_timestamp(headers: Mapping[str, str]) -> str | None:
    """X-Amz-Date, or the Date header in SigV4's basic format; None if neither is readable."""
    if "x-amz-date" in headers:
        value = headers["x-amz-date"].strip()
        return value if _parse_timestamp(value) else None
    if "date" in headers:
        try:
            return parsedate_to_datetime(headers["date"]).astimezone(UTC).strftime(_TIMESTAMP)
        except (TypeError, ValueError):
            return None
    return None


def _parse_timestamp(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _check_scope(signature: _Signature, service: str) -> None:
    if "host" not in signature.signed_headers:  # else a signature would be good for any server
        raise SignatureFailure(
            Failure.INCOMPLETE, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if signature.date != signature.timestamp[:8]:
        raise SignatureFailure(
            Failure.MISMATCH,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{signature.date}' != '{signature.timestamp[:8]}', from '{signature.timestamp}'.",
        )
    if signature.service != service:
        raise SignatureFailure(
            Failure.MISMATCH, f"Credential should be scoped to correct service: '{service}'."
        )


def _check_time(signature: _Signature, now: datetime) -> None:
    signed_at = _parse_timestamp(signature.timestamp)
    assert signed_at is not None
    stamp = now.strftime(_TIMESTAMP)
    if signature.presigned_expires is not None:
        limit = timedelta(seconds=signature.presigned_expires)
        if signed_at + limit < now:
            raise SignatureFailure(
                Failure.EXPIRED_SIGNATURE,
                f"Signature expired: {signature.timestamp} is now earlier than "
                f"{(now - limit).strftime(_TIMESTAMP)} ({stamp} - {signature.presigned_expires} sec.)",
            )
    elif signed_at < now - MAX_SKEW:
        raise SignatureFailure(
            Failure.EXPIRED_SIGNATURE,
            f"Signature expired: {signature.timestamp} is now earlier than "
            f"{(now - MAX_SKEW).strftime(_TIMESTAMP)} ({stamp} - 5 min.)",
        )
    if signed_at > now + MAX_SKEW:
        raise SignatureFailure(
            Failure.EXPIRED_SIGNATURE,
            f"Signature not yet current: {signature.timestamp} is still later than "
            f"{(now + MAX_SKEW).strftime(_TIMESTAMP)} ({stamp} + 5 min.)",
        )


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    """The query as SigV4 canonicalises it: each name and value URI-encoded (RFC 3986), sorted."""
    encoded = sorted((quote(key, safe="-_.~"), quote(value, safe="-_.~")) for key, value in pairs)
    return "&".join(f"{key}={value}" for key, value in encoded)


class _Verifier(SigV4Auth):
    """botocore's signer, told which headers the client signed rather than choosing them itself."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: tuple[str, ...]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            if name in request.headers:
                chosen[name] = request.headers[name]
        return chosen


def _expected_signature(request: SignedRequest, signature: _Signature, secret: str) -> str:
    headers = {name: request.headers[name] for name in signature.signed_headers if name in request.headers}
    claimed = request.headers.get("x-amz-content-sha256")
    if claimed is not None:
        _check_payload(request, claimed)
        headers["x-amz-content-sha256"] = claimed
    scheme = "https" if request.secure else "http"
    query = f"?{signature.signed_query}" if signature.signed_query else ""
    # The host is a signed header; the URL's is only a placeholder botocore needs to split the path.
    aws_request = AWSRequest(
        method=request.method,
        url=f"{scheme}://lambdad{request.path}{query}",
        headers=headers,
        data=request.body,
    )
    aws_request.context["timestamp"] = signature.timestamp
    credentials = Credentials(signature.access_key_id, secret, signature.security_token)
    signer = _Verifier(credentials, signature.service, signature.region, signature.signed_headers)
    canonical = signer.canonical_request(aws_request)
    return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))


def _check_payload(request: SignedRequest, claimed: str) -> None:
    """The x-amz-content-sha256 a client sends must be its body's (or UNSIGNED-PAYLOAD, over TLS)."""
    if claimed == UNSIGNED_PAYLOAD:
        if not request.secure:
            raise SignatureFailure(
                Failure.MISMATCH, "UNSIGNED-PAYLOAD is accepted only over HTTPS: sign the payload's SHA-256."
            )
        return
    if not _HEX_SHA256.fullmatch(claimed):
        raise SignatureFailure(
            Failure.INCOMPLETE,
            f"x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 in hex, got '{claimed}'.",
        )
    actual = hashlib.sha256(request.body).hexdigest() if request.body else EMPTY_SHA256_HASH
    if not hmac.compare_digest(actual, claimed):
        raise SignatureFailure(
            Failure.MISMATCH, "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
