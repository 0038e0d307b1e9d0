"""STS: GetCallerIdentity, AssumeRole, the role sessions lambdad issues itself (a function's execution
role), and the credential lookup the SigV4 verifier asks (``signing_key``: long-term keys and session
keys alike).

A session is an ASIA key id, a secret sealed with the key ring and a session token. The token is not
stored: it is an HMAC, under a key the ring derives, of the key id and the secret, so lambdad can
recompute it for the verifier from the sealed secret while the database holds only its SHA-256 (a copy
of the database, or of the secret alone, yields no usable token). Expired sessions are kept a day so that
their use answers ExpiredToken rather than an unknown key.

Whether a role trusts a caller is the policy evaluator's question (``lambdad.policy.trusts``, conditions
and all). AssumeRole here checks the trust policy; that the caller's own identity policies allow
``sts:AssumeRole`` is the authorizer's check before the handler runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from lambdad.errors import AccessDenied, NoSuchEntity, ValidationError
from lambdad.models import Principal, PrincipalKind, utcnow
from lambdad.policy import Context, MalformedPolicy, trusts
from lambdad.services import iam_checks as checks
from lambdad.services.identity import IdentityService, SigningKey, parse_role_arn, role_arn
from lambdad.store import Database
from lambdad.store import identity as records
from lambdad.store.identity import RoleRecord, SessionRecord
from lambdad.store.keyring import KeyRing

DEFAULT_DURATION = 3600
MIN_DURATION = 900
MAX_DURATION = 43200
CHAINED_MAX_DURATION = 3600  # a role session assuming a role: at most one hour, as AWS
EXPIRED_KEPT = timedelta(days=1)
LAMBDA_SERVICE = "lambda.amazonaws.com"


class SessionCredentials(NamedTuple):
    """A role session's credentials, as a function's environment receives them."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


class StsService:
    """Role sessions over the identity store; the credential lookup of the verifier."""

    def __init__(
        self,
        database: Database,
        keyring: KeyRing,
        identities: IdentityService,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._keyring = keyring
        self._identities = identities
        self._clock = clock
        self._token_key = keyring.derive("sts-session-token")

    def trusts(
        self, role: RoleRecord, principal: Principal | str, context: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether ``role``'s trust policy lets ``principal`` (or a service such as
        ``lambda.amazonaws.com``) assume it, the policy evaluator deciding with the condition keys in
        ``context`` (aws:PrincipalArn, ...). A stored trust policy the grammar now refuses trusts nobody."""
        arn = role_arn(role.account, role.path, role.name)
        try:
            return trusts(role.trust_policy, principal, arn, context=Context(context or {}))
        except MalformedPolicy:
            return False

    def get_caller_identity(self, principal: Principal) -> dict[str, str]:
        return {"UserId": principal.user_id, "Account": principal.account, "Arn": principal.arn}

    def assume_role(
        self,
        principal: Principal,
        arn: str,
        session_name: str,
        duration: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """AssumeRole: AccessDenied (as AWS, without saying which) when the role does not exist or its
        trust policy does not allow the caller (``context``: the request's condition keys)."""
        if len(arn) < 20:
            raise ValidationError(
                f"1 validation error detected: Value '{arn}' at 'roleArn' failed to satisfy constraint: "
                "Member must have length greater than or equal to 20"
            )
        checks.check_session_name(session_name)
        seconds = DEFAULT_DURATION if duration is None else duration
        _check_duration(seconds)
        role = self._identities.role_by_arn(arn)
        if role is None or not self.trusts(role, principal, context):
            raise AccessDenied(
                f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {arn}"
            )
        if principal.kind is PrincipalKind.ASSUMED_ROLE and seconds > CHAINED_MAX_DURATION:
            raise ValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role "
                "chaining."
            )
        if seconds > role.max_session_duration:
            raise ValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        credentials = self._issue(role, session_name, seconds)
        return {
            "Credentials": {
                "AccessKeyId": credentials.access_key_id,
                "SecretAccessKey": credentials.secret_access_key,
                "SessionToken": credentials.session_token,
                "Expiration": credentials.expiration,
            },
            "AssumedRoleUser": {
                "AssumedRoleId": f"{role.role_id}:{session_name}",
                "Arn": _session_arn(role, session_name),
            },
        }

    def issue_role_session(
        self,
        arn: str,
        session_name: str,
        duration: int = DEFAULT_DURATION,
        *,
        service: str | None = LAMBDA_SERVICE,
        context: Mapping[str, Any] | None = None,
    ) -> SessionCredentials:
        """Credentials of a session of the role ``arn`` that lambdad itself takes (a function's execution
        role, session name = the function's name, which may be one character where AssumeRole wants two).
        The role must exist (NoSuchEntity) and trust ``service`` (AccessDenied, with Lambda's words), as
        when Lambda assumes it; ``context`` holds the keys such a trust policy may test (AWS gives
        ``aws:SourceAccount`` and ``aws:SourceArn``, the function's account and ARN)."""
        checks.check_name(session_name, "roleSessionName", 64)
        _check_duration(duration)
        role = self._identities.role_by_arn(arn)
        if role is None:
            parsed = parse_role_arn(arn)
            raise NoSuchEntity(f"The role with name {parsed[1] if parsed else arn} cannot be found.")
        if service is not None and not self.trusts(role, service, context):
            raise AccessDenied("The role defined for the function cannot be assumed by Lambda.")
        return self._issue(role, session_name, duration)

    def signing_key(self, access_key_id: str) -> SigningKey | None:
        """The verifier's lookup (``CredentialResolver.resolve``): a session key (ASIA...) with its token
        and expiry (an expired one too: the verifier answers ExpiredToken), else a long-term key."""
        if not access_key_id.startswith("ASIA"):
            return self._identities.signing_key(access_key_id)
        with self._database.read() as connection:
            session = records.get_session(connection, access_key_id)
        if session is None:
            return None
        secret = self._keyring.open_sealed(session.sealed_secret, f"access-key:{access_key_id}").decode()
        token = self._token(access_key_id, secret)
        if not hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), session.token_sha256):
            return None  # the ring's first key changed since: the session's token cannot be made again
        role_name = session.role_arn.rsplit("/", 1)[-1]
        principal = Principal(
            session.account,
            PrincipalKind.ASSUMED_ROLE,
            f"arn:aws:sts::{session.account}:assumed-role/{role_name}/{session.session_name}",
            f"{session.role_id}:{session.session_name}",
            role_arn=session.role_arn,
            access_key_id=access_key_id,
        )
        return SigningKey(secret, principal, session_token=token, expires_at=session.expires)

    # CredentialResolver's name for the same lookup.
    resolve = signing_key

    def _issue(self, role: RoleRecord, session_name: str, duration: int) -> SessionCredentials:
        now = self._clock()
        key_id, secret = checks.access_key_id("ASIA"), checks.secret_access_key()
        token = self._token(key_id, secret)
        expires = now.replace(microsecond=0) + timedelta(seconds=duration)
        record = SessionRecord(
            key_id,
            role.account,
            role_arn(role.account, role.path, role.name),
            role.role_id,
            session_name,
            self._keyring.seal(secret.encode(), f"access-key:{key_id}"),
            hashlib.sha256(token.encode()).hexdigest(),
            now,
            expires,
        )
        with self._database.write() as connection:
            records.insert_session(connection, record)
            records.delete_sessions_expired_before(connection, now - EXPIRED_KEPT)
        return SessionCredentials(key_id, secret, token, expires)

    def _token(self, access_key_id: str, secret: str) -> str:
        mac = hmac.new(self._token_key, f"{access_key_id}:{secret}".encode(), hashlib.sha256).digest()
        return base64.b64encode(b"lambdad-sts-1" + mac).decode()


def _session_arn(role: RoleRecord, session_name: str) -> str:
    return f"arn:aws:sts::{role.account}:assumed-role/{role.name}/{session_name}"


def _check_duration(seconds: int) -> None:
    if seconds < MIN_DURATION:
        bound = f"greater than or equal to {MIN_DURATION}"
    elif seconds > MAX_DURATION:
        bound = f"less than or equal to {MAX_DURATION}"
    else:
        return
    raise ValidationError(
        f"1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: "
        f"Member must have value {bound}"
    )
