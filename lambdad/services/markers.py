"""Opaque pagination markers (``Marker``/``NextMarker``): where the next page starts, base64-encoded."""

from __future__ import annotations

import base64
import binascii

from lambdad.errors import InvalidParameterValueException


def encode_marker(*parts: str) -> str:
    """A marker holding ``parts`` (none may contain a newline)."""
    return base64.urlsafe_b64encode("\n".join(parts).encode()).decode()


def decode_marker(marker: str, count: int) -> tuple[str, ...]:
    """The ``count`` parts of a marker; AWS's error for one that is not ours."""
    try:
        parts = tuple(base64.urlsafe_b64decode(marker.encode()).decode().split("\n"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidParameterValueException("Invalid Marker value.") from error
    if len(parts) != count:
        raise InvalidParameterValueException("Invalid Marker value.")
    return parts
