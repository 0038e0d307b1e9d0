import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import SourceSpec
from lambdad.events.sources.stream_positions import check_starting_position


def spec(position: str | None, timestamp: float | None = None) -> SourceSpec:
    return SourceSpec(
        uuid="u",
        event_source_arn="arn:aws:nats:us-east-1:000000000000:stream/s",
        endpoint="nats://127.0.0.1:4222",
        region="us-east-1",
        account="000000000000",
        batch_size=10,
        starting_position=position,
        starting_position_timestamp=timestamp,
    )


@pytest.mark.parametrize("position", ["TRIM_HORIZON", "LATEST"])
def test_trim_horizon_and_latest_need_nothing_else(position: str) -> None:
    check_starting_position(spec(position), "a NATS stream")


def test_at_timestamp_is_accepted_with_its_timestamp() -> None:
    check_starting_position(spec("AT_TIMESTAMP", 1_700_000_000.0), "a NATS stream")


@pytest.mark.parametrize("position", [None, "EARLIEST", "trim_horizon"])
def test_other_positions_are_refused_naming_the_source(position: str | None) -> None:
    with pytest.raises(InvalidParameterValueException, match="for a PostgreSQL table"):
        check_starting_position(spec(position), "a PostgreSQL table")


def test_at_timestamp_without_a_timestamp_is_refused() -> None:
    with pytest.raises(InvalidParameterValueException, match="StartingPositionTimestamp is required"):
        check_starting_position(spec("AT_TIMESTAMP"), "a NATS stream")
