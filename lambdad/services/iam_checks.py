"""IAM's rules and forms shared by its services: names, paths and policy documents checked and worded as
IAM answers them, the identifiers it hands out (AIDA/AROA/ANPA ids, AKIA/ASIA access key ids, 40-character
secrets), Marker/MaxItems pages, URL-encoded documents, and the write that turns a name taken
concurrently into EntityAlreadyExists.

Policy documents are checked by the policy grammar (``lambdad.policy``), its failures worded as IAM's
MalformedPolicyDocument.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from lambdad.errors import EntityAlreadyExists, MalformedPolicyDocument, ValidationError
from lambdad.policy import MalformedPolicy, Policy, PolicyKind
from lambdad.policy import parse_policy as policy_grammar
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.store import Database

NAME_PATTERN = r"[\w+=,.@-]+"
_NAME = re.compile(NAME_PATTERN)
PATH_PATTERN = r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)"
_PATH = re.compile(PATH_PATTERN)
SESSION_NAME_PATTERN = r"[\w+=,.@-]*"
_SESSION_NAME = re.compile(SESSION_NAME_PATTERN)
_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"

# AWS's policy size quotas, in characters without whitespace (IAM and STS quotas page).
MANAGED_POLICY_MAX = 6144
TRUST_POLICY_MAX = 2048
USER_INLINE_TOTAL_MAX = 2048
ROLE_INLINE_TOTAL_MAX = 10240
MAX_ITEMS_DEFAULT = 100


def unique_id(prefix: str) -> str:
    """AWS's unique ids: AIDA (user), AROA (role), ANPA (policy) followed by 17 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def access_key_id(prefix: str = "AKIA") -> str:
    """AKIA (long-term) or ASIA (temporary) followed by 16 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def secret_access_key() -> str:
    """40 characters, as AWS's secrets."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _failure(value: Any, member: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        + constraint
    )


def check_name(value: str, member: str, maximum: int, pattern: re.Pattern[str] = _NAME) -> None:
    """A user, role or policy name: 1..maximum characters of ``[\\w+=,.@-]``."""
    if not value:
        raise _failure(value, member, "Member must have length greater than or equal to 1")
    if len(value) > maximum:
        raise _failure(value, member, f"Member must have length less than or equal to {maximum}")
    if not pattern.fullmatch(value):
        raise _failure(value, member, f"Member must satisfy regular expression pattern: {pattern.pattern}")


def check_session_name(value: str) -> None:
    """AssumeRole's RoleSessionName: 2..64 characters of ``[\\w+=,.@-]``."""
    if len(value) < 2:
        raise _failure(value, "roleSessionName", "Member must have length greater than or equal to 2")
    check_name(value, "roleSessionName", 64, _SESSION_NAME)


def check_path(value: str, member: str = "path") -> None:
    """A path: ``/`` or ``/text/``, at most 512 characters."""
    if len(value) > 512:
        raise _failure(value, member, "Member must have length less than or equal to 512")
    if not _PATH.fullmatch(value):
        raise _failure(value, member, f"Member must satisfy regular expression pattern: {PATH_PATTERN}")


def check_length(value: str, member: str, maximum: int) -> None:
    if len(value) > maximum:
        raise _failure(value, member, f"Member must have length less than or equal to {maximum}")


def compact_size(document: str) -> int:
    """A policy's size as IAM counts it against its quotas: characters other than whitespace."""
    return sum(1 for character in document if not character.isspace())


def parse_policy(document: str, *, trust: bool = False) -> Policy:
    """The policy ``document`` parsed by the policy grammar (``lambdad.policy``), or AWS's
    MalformedPolicyDocument in IAM's words: text that is not JSON, or JSON that is not a policy of its kind
    (an identity policy naming a Principal, a trust policy naming a Resource, ...)."""
    try:
        decoded = json.loads(document)
    except ValueError:
        raise MalformedPolicyDocument("This policy contains invalid Json") from None
    if not isinstance(decoded, dict):
        raise MalformedPolicyDocument("Syntax errors in policy.")
    try:
        return policy_grammar(decoded, PolicyKind.TRUST if trust else PolicyKind.IDENTITY)
    except MalformedPolicy as error:
        raise MalformedPolicyDocument(error.message) from None


def encoded(document: str) -> str:
    """A policy document as IAM answers it: URL-encoded (RFC 3986)."""
    return quote(document, safe="")


def page(items: list[Any], limit: int, key: Callable[[Any], str]) -> tuple[list[Any], str | None]:
    """Cut one page from ``items`` (one more than a page was read): (page, marker of the next or None)."""
    if len(items) <= limit:
        return items, None
    cut = items[:limit]
    return cut, encode_marker(key(cut[-1]))


def after(marker: str | None) -> str | None:
    """The key a Marker says the next page starts after."""
    return decode_marker(marker, 1)[0] if marker else None


def max_items(value: int | None) -> int:
    """MaxItems, 1..1000, default 100."""
    if value is not None and not 1 <= value <= 1000:
        raise _failure(value, "maxItems", "Member must have value less than or equal to 1000")
    return value or MAX_ITEMS_DEFAULT


@contextmanager
def writing(database: Database, conflict: str) -> Iterator[Connection]:
    """A write transaction in which a concurrent insert of the same name is EntityAlreadyExists."""
    try:
        with database.write() as connection:
            yield connection
    except IntegrityError as error:
        raise EntityAlreadyExists(conflict) from error
