"""Event source mapping rows on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdad.models import Scope
from lambdad.store import Database
from lambdad.store import event_source_mappings as records
from lambdad.store.event_source_mappings import MappingRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def mapping(uuid: str, region: str = "us-east-1", minutes: int = 0) -> MappingRecord:
    return MappingRecord(
        uuid=uuid,
        account="000000000000",
        region=region,
        function_arn=f"arn:aws:lambda:{region}:000000000000:function:f",
        event_source_arn="arn:aws:redis:us-east-1:000000000000:stream/s",
        state="Creating",
        state_transition_reason="User action",
        enabled=True,
        last_modified=NOW + timedelta(minutes=minutes),
        last_processing_result="No records processed",
        config={"BatchSize": 100, "FilterCriteria": {"Filters": [{"Pattern": '{"a": [1]}'}]}},
    )


def test_mapping_round_trips(database: Database) -> None:
    with database.write() as connection:
        records.insert_mapping(connection, mapping("u1"))
    with database.read() as connection:
        assert records.get_mapping(connection, "u1") == mapping("u1")


def test_state_and_result_change_alone(database: Database) -> None:
    with database.write() as connection:
        records.insert_mapping(connection, mapping("u1"))
        records.set_state(connection, "u1", "Enabled", last_processing_result="OK")
    with database.read() as connection:
        stored = records.get_mapping(connection, "u1")
    assert stored is not None
    assert (stored.state, stored.last_processing_result, stored.config) == (
        "Enabled",
        "OK",
        mapping("u1").config,
    )


def test_list_by_region_oldest_first_and_delete(database: Database) -> None:
    with database.write() as connection:
        records.insert_mapping(connection, mapping("late", minutes=5))
        records.insert_mapping(connection, mapping("early"))
        records.insert_mapping(connection, mapping("elsewhere", region="eu-west-1"))
    with database.read() as connection:
        assert [m.uuid for m in records.list_mappings(connection, Scope("000000000000", "us-east-1"))] == [
            "early",
            "late",
        ]
        assert len(records.list_mappings(connection)) == 3
    with database.write() as connection:
        assert records.delete_mapping(connection, "early")
        assert not records.delete_mapping(connection, "early")
