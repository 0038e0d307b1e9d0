"""Where a mapping on an ordered source (a stream, a table's change log) starts reading, and the check
every such kind makes of it before a mapping is stored."""

from __future__ import annotations

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceSpec

STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")


def check_starting_position(spec: SourceSpec, source: str) -> None:
    """Refuse a StartingPosition other than TRIM_HORIZON, LATEST or AT_TIMESTAMP, and AT_TIMESTAMP without
    its StartingPositionTimestamp; ``source`` names the kind in the message ("a NATS stream")."""
    if spec.starting_position not in STARTING_POSITIONS:
        raise InvalidParameterValueException(
            f"StartingPosition must be one of TRIM_HORIZON, LATEST or AT_TIMESTAMP for {source}."
        )
    if spec.starting_position == "AT_TIMESTAMP" and spec.starting_position_timestamp is None:
        raise InvalidParameterValueException(
            "StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP."
        )
