"""The SigV4 verifier against requests botocore itself signed: what AWS accepts passes, and every way a
request can fail authentication fails as that kind (each test would pass a verifier that checked less)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdad import errors
from lambdad.api.sigv4 import (
    Authenticator,
    Failure,
    SignatureFailure,
    SignedRequest,
    SigningIdentity,
    aws_error,
)
from lambdad.models import Principal, PrincipalKind

KEY, SECRET = "AKIAEXAMPLEKEY000001", "secret/example+key0000000000000000000000"
TEMP_KEY, TEMP_SECRET, TOKEN = "ASIAEXAMPLEKEY000002", "temporary-secret", "session-token-value"
OLD_KEY, OLD_TOKEN = "ASIAEXAMPLEKEY000003", "old-session-token"
OFF_KEY = "AKIAEXAMPLEKEY000004"
ALICE = Principal("111111111111", PrincipalKind.USER, "arn:aws:iam::111111111111:user/alice", "AIDAALICE")
SESSION = Principal(
    "111111111111",
    PrincipalKind.ASSUMED_ROLE,
    "arn:aws:sts::111111111111:assumed-role/r/s",
    "AROAR:s",
    role_arn="arn:aws:iam::111111111111:role/r",
)
URL = "http://lambdad.test:3001/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Af/invocations?Qualifier=live"


class Keys:
    """A dict-backed CredentialResolver."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.keys = {
            KEY: SigningIdentity(SECRET, ALICE),
            TEMP_KEY: SigningIdentity(TEMP_SECRET, SESSION, TOKEN, now + timedelta(hours=1)),
            OLD_KEY: SigningIdentity(TEMP_SECRET, SESSION, OLD_TOKEN, now - timedelta(seconds=1)),
            OFF_KEY: SigningIdentity(SECRET, ALICE, active=False),
        }
        self.asked: list[str] = []

    def resolve(self, access_key_id: str) -> SigningIdentity | None:
        self.asked.append(access_key_id)
        return self.keys.get(access_key_id)


def sign(
    url: str = URL,
    method: str = "POST",
    body: bytes = b'{"hello": "world"}',
    key: str = KEY,
    secret: str = SECRET,
    token: str | None = None,
    service: str = "lambda",
    headers: dict[str, str] | None = None,
    presign: int | None = None,
    unsigned_payload: bool = False,
) -> SignedRequest:
    """A request botocore signed, as the server receives it."""
    request = AWSRequest(
        method=method, url=url, data=body, headers=headers or {"x-amz-invocation-type": "Event"}
    )
    if unsigned_payload:
        request.context["payload_signing_enabled"] = False
    credentials = Credentials(key, secret, token)
    if presign is None:
        SigV4Auth(credentials, service, "eu-west-1").add_auth(request)
    else:
        SigV4QueryAuth(credentials, service, "eu-west-1", expires=presign).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    received = {name.lower(): value for name, value in prepared.headers.items()}
    received.setdefault("host", parts.netloc)  # what the HTTP client sends
    received["user-agent"] = "added after signing, not signed"
    return SignedRequest(
        method,
        parts.path,
        parts.query,
        received,
        prepared.body or b"",
        secure=parts.scheme == "https",
    )


def verify(request: SignedRequest, skew: timedelta = timedelta(0), service: str = "lambda") -> Principal:
    authenticator = Authenticator(Keys(), clock=lambda: datetime.now(UTC) + skew)
    return asyncio.run(authenticator.authenticate(request, service))


def refused(
    request: SignedRequest, skew: timedelta = timedelta(0), service: str = "lambda"
) -> SignatureFailure:
    with pytest.raises(SignatureFailure) as raised:
        verify(request, skew, service)
    return raised.value


def test_a_header_signed_request_is_its_signers() -> None:
    assert verify(sign()) == dataclasses.replace(ALICE, access_key_id=KEY)


def test_a_get_with_an_empty_body_and_an_encoded_query() -> None:
    url = "http://lambdad.test/2015-03-31/functions?FunctionVersion=ALL&Marker=a%2Fb%20c&MaxItems=5"
    assert verify(sign(url, method="GET", body=b"")).arn == ALICE.arn


def test_a_form_body_of_the_query_protocol() -> None:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert verify(sign("http://lambdad.test/", body=body, service="sts", headers=headers), service="sts")


def test_a_presigned_url_is_its_signers() -> None:
    assert verify(sign(method="GET", body=b"", presign=300)).arn == ALICE.arn


def test_a_presigned_url_expires() -> None:
    request = sign(method="GET", body=b"", presign=300)
    assert verify(request, timedelta(seconds=290))
    failure = refused(request, timedelta(seconds=310))
    assert failure.kind is Failure.EXPIRED_SIGNATURE
    assert failure.message.startswith("Signature expired: ") and failure.message.endswith(" - 300 sec.)")


def test_a_tampered_presigned_url_does_not_match() -> None:
    request = sign(method="GET", body=b"", presign=300)
    tampered = dataclasses.replace(request, query_string=request.query_string.replace("live", "prod"))
    assert refused(tampered).kind is Failure.MISMATCH


def test_session_credentials_need_their_token() -> None:
    assert verify(sign(key=TEMP_KEY, secret=TEMP_SECRET, token=TOKEN)) == dataclasses.replace(
        SESSION, access_key_id=TEMP_KEY
    )
    without = sign(key=TEMP_KEY, secret=TEMP_SECRET)
    assert refused(without).kind is Failure.UNKNOWN_KEY
    other = sign(key=TEMP_KEY, secret=TEMP_SECRET, token="another-token")
    assert refused(other).kind is Failure.UNKNOWN_KEY
    presigned = sign(key=TEMP_KEY, secret=TEMP_SECRET, token=TOKEN, method="GET", body=b"", presign=60)
    assert verify(presigned).arn == SESSION.arn


def test_a_token_is_refused_with_a_long_term_key() -> None:
    assert refused(sign(token="made-up")).kind is Failure.UNKNOWN_KEY


def test_expired_session_credentials() -> None:
    failure = refused(sign(key=OLD_KEY, secret=TEMP_SECRET, token=OLD_TOKEN))
    assert (failure.kind, failure.message) == (
        Failure.EXPIRED_TOKEN,
        "The security token included in the request is expired",
    )


def test_unknown_and_inactive_keys() -> None:
    assert refused(sign(key="AKIANOSUCHKEY0000000")).kind is Failure.UNKNOWN_KEY
    assert refused(sign(key=OFF_KEY)).kind is Failure.UNKNOWN_KEY


def test_a_wrong_secret_does_not_match() -> None:
    failure = refused(sign(secret="not-the-secret"))
    assert failure.kind is Failure.MISMATCH
    assert failure.message.startswith("The request signature we calculated does not match")


@pytest.mark.parametrize("part", ["method", "path", "query", "signed header", "body", "date"])
def test_any_tampering_does_not_match(part: str) -> None:
    request = sign()
    headers = dict(request.headers)
    if part == "method":
        request = dataclasses.replace(request, method="PUT")
    elif part == "path":
        request = dataclasses.replace(request, path=request.path.replace("function%3Af", "function%3Ag"))
    elif part == "query":
        request = dataclasses.replace(request, query_string="Qualifier=prod")
    elif part == "signed header":
        headers["x-amz-invocation-type"] = "RequestResponse"
        request = dataclasses.replace(request, headers=headers)
    elif part == "body":
        request = dataclasses.replace(request, body=b'{"hello": "there"}')
    else:
        stamp = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ") - timedelta(seconds=1)
        headers["x-amz-date"] = stamp.strftime("%Y%m%dT%H%M%SZ")
        request = dataclasses.replace(request, headers=headers)
    assert refused(request).kind is Failure.MISMATCH


def test_a_payload_hash_header_must_be_the_bodys() -> None:
    import hashlib

    body = b'{"hello": "world"}'
    headers = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    request = sign(body=body, headers=headers)
    assert verify(request)
    # The signature covers the claimed hash; a different body under it is refused.
    assert refused(dataclasses.replace(request, body=b'{"hello": "there"}')).kind is Failure.MISMATCH


def test_unsigned_payload_only_over_tls() -> None:
    secure = sign(url=URL.replace("http://", "https://"), unsigned_payload=True)
    assert secure.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert verify(secure)
    assert verify(dataclasses.replace(secure, body=b"any body at all"))  # what UNSIGNED-PAYLOAD means
    plain = dataclasses.replace(secure, secure=False)
    assert refused(plain).kind is Failure.MISMATCH


def test_clock_skew_both_ways() -> None:
    request = sign()
    assert verify(request, timedelta(minutes=4))
    assert verify(request, -timedelta(minutes=4))
    late = refused(request, timedelta(minutes=6))
    assert late.kind is Failure.EXPIRED_SIGNATURE
    assert late.message.startswith(f"Signature expired: {request.headers['x-amz-date']} is now earlier than ")
    assert late.message.endswith(" - 5 min.)")
    early = refused(request, -timedelta(minutes=6))
    assert early.kind is Failure.EXPIRED_SIGNATURE
    assert early.message.startswith(
        f"Signature not yet current: {request.headers['x-amz-date']} is still later"
    )


def test_the_scope_must_name_the_service() -> None:
    failure = refused(sign(service="iam"))
    assert (failure.kind, failure.message) == (
        Failure.MISMATCH,
        "Credential should be scoped to correct service: 'lambda'.",
    )


def test_the_host_must_be_signed() -> None:
    request = sign()
    authorization = request.headers["authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    failure = refused(
        dataclasses.replace(request, headers={**request.headers, "authorization": authorization})
    )
    assert failure.kind is Failure.INCOMPLETE


def test_an_incomplete_presigned_url() -> None:
    request = sign(method="GET", body=b"", presign=60)
    query = "&".join(
        part for part in request.query_string.split("&") if not part.startswith("X-Amz-Signature=")
    )
    failure = refused(dataclasses.replace(request, query_string=query))
    assert (failure.kind, failure.message) == (
        Failure.INCOMPLETE,
        "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.",
    )


def test_no_signature_is_missing() -> None:
    request = sign()
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    assert refused(dataclasses.replace(request, headers=headers)).kind is Failure.MISSING


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY000001/20261206/us-east-1/lambda/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY000001/us-east-1/lambda, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential AKIA",
        "AWS AKIAEXAMPLEKEY000001:c2lnbmF0dXJl",
        "Bearer token",
    ],
)
def test_a_malformed_authorization_is_incomplete(authorization: str) -> None:
    request = sign()
    keys = Keys()
    headers = {**request.headers, "authorization": authorization}
    with pytest.raises(SignatureFailure) as raised:
        asyncio.run(Authenticator(keys).authenticate(dataclasses.replace(request, headers=headers), "lambda"))
    assert raised.value.kind is Failure.INCOMPLETE
    assert keys.asked == []  # refused before any look-up


def test_each_protocol_words_each_failure_as_aws_does() -> None:
    def code(kind: Failure, protocol: str) -> tuple[str, int]:
        error = aws_error(SignatureFailure(kind, "m"), protocol)
        return error.code, error.status

    assert code(Failure.MISSING, "rest-json") == ("MissingAuthenticationTokenException", 403)
    assert code(Failure.UNKNOWN_KEY, "rest-json") == ("UnrecognizedClientException", 403)
    assert code(Failure.MISMATCH, "rest-json") == ("InvalidSignatureException", 403)
    assert code(Failure.EXPIRED_TOKEN, "rest-json") == ("ExpiredTokenException", 403)
    assert code(Failure.UNKNOWN_KEY, "query") == ("InvalidClientTokenId", 403)
    assert code(Failure.MISMATCH, "query") == ("SignatureDoesNotMatch", 403)
    assert code(Failure.EXPIRED_TOKEN, "query") == ("ExpiredToken", 403)
    assert code(Failure.UNKNOWN_KEY, "ec2") == ("AuthFailure", 401)
    assert code(Failure.EXPIRED_SIGNATURE, "ec2") == ("RequestExpired", 400)
    missing = aws_error(SignatureFailure(Failure.MISSING, "m"), "rest-json")
    assert isinstance(missing, errors.MissingAuthenticationTokenException)
    assert missing.message == "Missing Authentication Token"


def test_the_body_is_read_only_for_a_known_key() -> None:
    reads: list[str] = []

    def reader(request: SignedRequest) -> Any:
        async def read() -> bytes:
            reads.append(request.headers["authorization"].split("/")[0])
            return request.body

        return read

    authenticator = Authenticator(Keys())
    for request in (sign(key="AKIANOSUCHKEY0000000"), sign(key=OFF_KEY), sign(token="made-up")):
        with pytest.raises(SignatureFailure):
            asyncio.run(
                authenticator.authenticate(dataclasses.replace(request, body=b""), "lambda", reader(request))
            )
    assert reads == []
    request = sign()
    principal = asyncio.run(
        authenticator.authenticate(dataclasses.replace(request, body=b""), "lambda", reader(request))
    )
    assert principal.arn == ALICE.arn and len(reads) == 1
