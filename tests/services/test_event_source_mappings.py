"""EventSourceMappingService on a real SQLite store, with a catalog serving a queue (sqs) and a stream
(redis) kind: AWS's defaults and checks per kind, and the poller's state reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import Scope
from lambdad.services.aliases import AliasService
from lambdad.services.event_source_mappings import EventSourceMappingService
from lambdad.services.mapping_states import MappingMove
from lambdad.store.event_source_mappings import MappingRecord
from tests.recordings import recorded
from tests.services.test_functions import Parts, create_params

SCOPE = Scope("000000000000", "us-east-1")
QUEUE = "arn:aws:sqs:us-east-1:000000000000:queue-1"
STREAM = "arn:aws:redis:us-east-1:000000000000:stream/s1"
SQS = "event_source_mapping/test_lambda_integration_sqs.snapshot.json"


class Catalog:
    """Two kinds: SQS-style queues and Redis streams; records what it was asked to check."""

    def __init__(self) -> None:
        self.checked: list[MappingRecord] = []

    def services(self) -> list[str]:
        return ["redis", "sqs"]

    def ordered(self, event_source_arn: str) -> bool:
        return ":redis:" in event_source_arn

    def check(self, record: MappingRecord) -> None:
        self.checked.append(record)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[EventSourceMappingService]:
    parts = Parts(tmp_path)
    parts.service.create(SCOPE, create_params("target"))
    yield EventSourceMappingService(parts.database, Catalog(), SCOPE.account)
    parts.close()


def sqs_error(test: str, key: str) -> str:
    return str(recorded(SQS, test, key)["Error"]["Message"])


def test_queue_mapping_takes_aws_queue_defaults(service: EventSourceMappingService) -> None:
    record = service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target"})
    expected = recorded(
        "test_lambda_api.snapshot.json", "test_function_name_variations", "name_only_create_esm"
    )
    assert record.config == {
        "BatchSize": expected["BatchSize"],
        "MaximumBatchingWindowInSeconds": expected["MaximumBatchingWindowInSeconds"],
        "FunctionResponseTypes": expected["FunctionResponseTypes"],
    }
    assert record.state == expected["State"]
    assert record.state_transition_reason == expected["StateTransitionReason"]
    assert record.last_processing_result is None  # AWS answers none for SQS


def test_queue_batch_over_ten_needs_a_window(service: EventSourceMappingService) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target", "BatchSize": 20})
    assert caught.value.message == sqs_error(
        "test_event_source_mapping_default_batch_size", "invalid-create-event-source-mapping"
    )
    record = service.create(
        SCOPE,
        {
            "EventSourceArn": QUEUE,
            "FunctionName": "target",
            "BatchSize": 20,
            "MaximumBatchingWindowInSeconds": 1,
        },
    )
    assert record.config["BatchSize"] == 20


def test_sqs_refuses_a_destination_config(service: EventSourceMappingService) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        service.create(
            SCOPE,
            {
                "EventSourceArn": QUEUE,
                "FunctionName": "target",
                "DestinationConfig": {"OnFailure": {"Destination": STREAM}},
            },
        )
    assert (
        caught.value.message
        == recorded(
            "test_lambda_api.snapshot.json",
            "test_event_source_mapping_exceptions",
            "destination_config_failure",
        )["Error"]["Message"]
    )


def test_queue_refuses_a_starting_position(service: EventSourceMappingService) -> None:
    with pytest.raises(InvalidParameterValueException, match="Unsupported starting position for arn type"):
        service.create(
            SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target", "StartingPosition": "LATEST"}
        )


def test_sqs_duplicate_uses_aws_sqs_wording(service: EventSourceMappingService) -> None:
    first = service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target"})
    with pytest.raises(ResourceConflictException) as caught:
        service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target"})
    assert caught.value.message == (
        f'An event source mapping with SQS arn (" {QUEUE} ") and function (" target ") already exists. '
        f"Please update or delete the existing mapping with UUID {first.uuid}"
    )


def test_stream_mapping_takes_aws_stream_defaults(service: EventSourceMappingService) -> None:
    record = service.create(
        SCOPE, {"EventSourceArn": STREAM, "FunctionName": "target", "StartingPosition": "TRIM_HORIZON"}
    )
    assert record.config["BatchSize"] == 100
    assert record.config["MaximumRetryAttempts"] == -1
    assert record.config["MaximumRecordAgeInSeconds"] == -1
    assert record.config["DestinationConfig"] == {"OnFailure": {}}
    assert record.last_processing_result == "No records processed"


@pytest.mark.parametrize("age", [59, 604801])
def test_record_age_out_of_range_is_refused(service: EventSourceMappingService, age: int) -> None:
    with pytest.raises(InvalidParameterValueException):
        service.create(
            SCOPE,
            {
                "EventSourceArn": STREAM,
                "FunctionName": "target",
                "StartingPosition": "LATEST",
                "MaximumRecordAgeInSeconds": age,
            },
        )


def test_poller_settles_and_a_stale_settle_is_ignored(service: EventSourceMappingService) -> None:
    created = service.create(
        SCOPE, {"EventSourceArn": STREAM, "FunctionName": "target", "StartingPosition": "LATEST"}
    )
    updated = service.update(SCOPE, created.uuid, {"BatchSize": 5})
    assert updated.state == "Updating"
    service.settle(created.uuid, MappingMove.STARTED, created)  # the poller saw the old mapping
    assert service.get(SCOPE, created.uuid).state == "Updating"
    service.settle(created.uuid, MappingMove.STARTED, updated)
    assert service.get(SCOPE, created.uuid).state == "Enabled"


def test_update_of_enabled_alone_answers_disabling(service: EventSourceMappingService) -> None:
    created = service.create(
        SCOPE, {"EventSourceArn": STREAM, "FunctionName": "target", "StartingPosition": "LATEST"}
    )
    service.settle(created.uuid, MappingMove.STARTED, created)
    disabled = service.update(SCOPE, created.uuid, {"Enabled": False})
    assert (disabled.state, disabled.enabled) == ("Disabling", False)


def test_delete_answers_deleting_and_the_poller_removes_it(service: EventSourceMappingService) -> None:
    heard: list[str] = []
    service.subscribe(heard.append)
    created = service.create(
        SCOPE, {"EventSourceArn": STREAM, "FunctionName": "target", "StartingPosition": "LATEST"}
    )
    assert service.delete(SCOPE, created.uuid).state == "Deleting"
    assert service.get(SCOPE, created.uuid).state == "Deleting"
    service.remove(created.uuid)
    with pytest.raises(ResourceNotFoundException):
        service.get(SCOPE, created.uuid)
    assert heard == [created.uuid, created.uuid]


def test_last_processing_result_is_reported(service: EventSourceMappingService) -> None:
    stream = service.create(
        SCOPE, {"EventSourceArn": STREAM, "FunctionName": "target", "StartingPosition": "LATEST"}
    )
    queue = service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target"})
    for record in (stream, queue):
        service.report(record.uuid, "OK")
    assert service.get(SCOPE, stream.uuid).last_processing_result == "OK"
    assert service.get(SCOPE, queue.uuid).last_processing_result is None


def test_mappings_of_another_region_are_not_found(service: EventSourceMappingService) -> None:
    created = service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target"})
    with pytest.raises(ResourceNotFoundException):
        service.get(Scope(SCOPE.account, "eu-west-1"), created.uuid)


def test_list_pages_with_markers(service: EventSourceMappingService, tmp_path: Path) -> None:
    made = [
        service.create(SCOPE, {"EventSourceArn": f"{QUEUE}-{index}", "FunctionName": "target"}).uuid
        for index in range(3)
    ]
    first = service.list(SCOPE, max_items=2)
    assert [m.uuid for m in first.mappings] == made[:2]
    assert first.next_marker is not None
    rest = service.list(SCOPE, max_items=2, marker=first.next_marker)
    assert ([m.uuid for m in rest.mappings], rest.next_marker) == (made[2:], None)
    with pytest.raises(InvalidParameterValueException, match="Invalid Marker value"):
        service.list(SCOPE, marker="not a marker")


def test_amazon_mq_defaults_to_batches_of_100(tmp_path: Path) -> None:
    class WithMq(Catalog):
        def services(self) -> list[str]:
            return ["mq", "redis", "sqs"]

    parts = Parts(tmp_path)
    try:
        parts.service.create(SCOPE, create_params("target"))
        service = EventSourceMappingService(parts.database, WithMq(), SCOPE.account)
        broker = "arn:aws:mq:us-east-1:000000000000:broker:b:b-1"
        record = service.create(SCOPE, {"EventSourceArn": broker, "FunctionName": "target", "Queues": ["q"]})
        assert record.config["BatchSize"] == 100
        assert record.config["Queues"] == ["q"]
        bigger = service.create(
            SCOPE, {"EventSourceArn": broker, "FunctionName": "target", "Queues": ["q2"], "BatchSize": 500}
        )
        assert bigger.config["BatchSize"] == 500  # no batching window needed: that rule is SQS's
    finally:
        parts.close()


def test_function_role_is_the_invoked_versions_role(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    try:
        first, second = "arn:aws:iam::000000000000:role/first", "arn:aws:iam::000000000000:role/second"
        parts.service.create(SCOPE, create_params("target", Role=first))
        parts.activator.submit(SCOPE, "target").result(timeout=5)
        parts.service.versions.publish(SCOPE, "target")
        AliasService(parts.database, parts.changes).create(SCOPE, "target", "live", "1")
        parts.service.update_configuration(SCOPE, {"FunctionName": "target", "Role": second})
        service = EventSourceMappingService(parts.database, Catalog(), SCOPE.account)
        latest = service.create(SCOPE, {"EventSourceArn": QUEUE, "FunctionName": "target"})
        aliased = service.create(
            SCOPE, {"EventSourceArn": STREAM, "FunctionName": "target:live", "StartingPosition": "LATEST"}
        )
        assert service.function_role(latest) == second
        assert service.function_role(aliased) == first, (
            "the alias's version keeps the role it was published with"
        )
        parts.service.delete(SCOPE, "target")
        assert service.function_role(latest) is None
    finally:
        parts.close()
