"""The SQS source against a real SQS-compatible server (moto's), through the source contract only."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources import SOURCE_KINDS, NumberAttribute, SourceSpec, SourceUnavailable, kind_for
from lambdad.events.sources.sqs import SQS, make_client
from tests.brokers import moto_server
from tests.events.sources.conftest import run, source_spec
from tests.support import free_port

RECORDINGS = Path(__file__).parents[2] / "aws-recordings/lambda/event_source_mapping"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def recorded_record() -> dict[str, Any]:
    """The SQS record AWS sent a function, as recorded (with message attributes)."""
    snapshot = json.loads((RECORDINGS / "test_lambda_integration_sqs.snapshot.json").read_text())
    key = next(k for k in snapshot if k.endswith("test_message_body_and_attributes_passed_correctly"))
    message = snapshot[key]["recorded-content"]["first_attempt"]["Messages"][0]
    return dict(message["Body"]["event"]["Records"][0])


def spec(endpoint: str, queue: str, **overrides: Any) -> SourceSpec:
    return source_spec(f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}", endpoint, **overrides)


@pytest.fixture
def sqs(sqs_endpoint: str) -> Any:
    return make_client(sqs_endpoint, REGION)


@pytest.fixture
def queue(sqs: Any) -> Iterator[tuple[str, str]]:
    """A queue of the test's own whose messages come back one second after a receive: (name, url)."""
    name = f"q-{uuid.uuid4().hex[:12]}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    yield name, url
    sqs.delete_queue(QueueUrl=url)


def test_the_sqs_kind_serves_sqs_arns() -> None:
    assert SOURCE_KINDS["sqs"] is SQS
    assert kind_for(f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders") is SQS


def test_a_record_has_the_fields_and_shape_aws_sends(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    body = json.dumps({"destination": "x", "fail_attempts": 0})
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={
            "Title": {"DataType": "String", "StringValue": "The Whistler"},
            "WeeksOn": {"DataType": "Number", "StringValue": "6"},
            "Cover": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        source = SQS.source(spec(sqs_endpoint, name))
        await source.open()
        try:
            messages = await source.receive(10, 5)
            return messages, source.event(messages)
        finally:
            await source.close()

    messages, event = run(scenario())
    expected = recorded_record()
    (record,) = event["Records"]
    assert list(record) == list(expected)
    assert set(expected["attributes"]) <= set(record["attributes"])
    assert record["messageId"] == sent["MessageId"] == messages[0].item_id
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    assert record["awsRegion"] == REGION
    assert record["messageAttributes"]["Title"] == expected["messageAttributes"]["Title"]
    assert record["messageAttributes"]["WeeksOn"] == expected["messageAttributes"]["WeeksOn"]
    assert record["messageAttributes"]["Cover"] == {
        "binaryValue": base64.b64encode(b"\x00\x01").decode(),
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }
    (message,) = messages
    assert message.delivery_count == 1
    assert abs(message.sent_at - time.time()) < 60
    assert message.filter_view["body"] == {"destination": "x", "fail_attempts": 0}


def test_a_message_without_attributes_has_no_attribute_digest(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="plain text")

    async def scenario() -> list[Any]:
        source = SQS.source(spec(sqs_endpoint, name))
        await source.open()
        try:
            return await source.receive(10, 5)
        finally:
            await source.close()

    (message,) = run(scenario())
    assert message.record["messageAttributes"] == {}
    assert message.record["md5OfMessageAttributes"] is None
    assert message.filter_view["body"] == "plain text"


def test_a_batch_larger_than_ten_is_filled_by_several_receives(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    for start in range(0, 25, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(start + 10, 25))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    async def scenario() -> list[Any]:
        source = SQS.source(spec(sqs_endpoint, name, batch_size=25, maximum_batching_window_in_seconds=1))
        await source.open()
        try:
            return await source.receive(25, 5)
        finally:
            await source.close()

    messages = run(scenario())
    assert sorted(m.record["body"] for m in messages) == sorted(f"m{i}" for i in range(25))


def test_receive_on_an_empty_queue_returns_nothing_after_max_wait(
    sqs_endpoint: str, queue: tuple[str, str]
) -> None:
    async def scenario() -> tuple[list[Any], float]:
        source = SQS.source(spec(sqs_endpoint, queue[0]))
        await source.open()
        try:
            started = time.monotonic()
            return await source.receive(10, 1), time.monotonic() - started
        finally:
            await source.close()

    messages, waited = run(scenario())
    assert messages == []
    assert waited < 5


def test_acknowledged_messages_never_come_back(sqs_endpoint: str, sqs: Any, queue: tuple[str, str]) -> None:
    name, url = queue
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")

    async def scenario() -> tuple[int, list[Any], int | None]:
        source = SQS.source(spec(sqs_endpoint, name))
        await source.open()
        try:
            first = await source.receive(10, 5)
            await source.ack(first)
            await asyncio.sleep(1.5)  # past the visibility timeout
            return len(first), await source.receive(10, 1), await source.lag()
        finally:
            await source.close()

    taken, again, lag = run(scenario())
    assert taken == 3
    assert again == []
    assert lag == 0


def test_a_released_message_comes_back_after_the_visibility_timeout_with_a_higher_count(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="retry me")

    async def scenario() -> list[Any]:
        source = SQS.source(spec(sqs_endpoint, name))
        await source.open()
        try:
            first = await source.receive(10, 5)
            await source.release(first)
            second = await source.receive(10, 5)
            return [*first, *second]
        finally:
            await source.close()

    first, second = run(scenario())
    assert second.item_id == first.item_id
    assert (first.delivery_count, second.delivery_count) == (1, 2)
    assert second.record["attributes"]["ApproximateReceiveCount"] == "2"


def test_unacknowledged_messages_reach_a_new_source_after_the_old_one_closed(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="survivor")
    mapping = spec(sqs_endpoint, name)

    async def scenario() -> tuple[list[Any], list[Any]]:
        old = SQS.source(mapping)
        await old.open()
        taken = await old.receive(10, 5)
        await old.close()
        new = SQS.source(mapping)
        await new.open()
        try:
            return taken, await new.receive(10, 5)
        finally:
            await new.close()

    taken, again = run(scenario())
    assert [m.record["body"] for m in again] == ["survivor"]
    assert again[0].item_id == taken[0].item_id


def test_the_queues_redrive_policy_moves_a_poison_message_to_its_dead_letter_queue(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    _, dlq_url = queue
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
    dlq_arn = attributes["QueueArn"]
    name = f"q-{uuid.uuid4().hex[:12]}"
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
        },
    )["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=url, MessageBody="poison")

        async def scenario() -> tuple[list[Any], list[Any]]:
            source = SQS.source(spec(sqs_endpoint, name))
            await source.open()
            try:
                first = await source.receive(10, 5)
                await source.release(first)
                await asyncio.sleep(1.5)
                return first, await source.receive(10, 1)
            finally:
                await source.close()

        first, again = run(scenario())
        assert [m.record["body"] for m in first] == ["poison"]
        assert again == []
        moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
        assert [m["Body"] for m in moved] == ["poison"]
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_lag_counts_the_messages_waiting(sqs_endpoint: str, sqs: Any, queue: tuple[str, str]) -> None:
    name, url = queue
    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")

    async def scenario() -> int | None:
        source = SQS.source(spec(sqs_endpoint, name))
        await source.open()
        try:
            return await source.lag()
        finally:
            await source.close()

    assert run(scenario()) == 4


def test_a_missing_queue_is_reported_in_aws_words(sqs_endpoint: str) -> None:
    async def scenario() -> None:
        source = SQS.source(spec(sqs_endpoint, f"missing-{uuid.uuid4().hex[:8]}"))
        try:
            await source.open()
        finally:
            await source.close()

    with pytest.raises(SourceUnavailable) as raised:
        run(scenario())
    assert str(raised.value).startswith(
        "Error occurred while GetQueueUrl. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue."
    )


def test_an_unreachable_endpoint_is_unavailable_and_a_reopened_source_continues_once_it_is_back() -> None:
    server = moto_server(free_port())
    endpoint = f"http://127.0.0.1:{server.port}"
    name = f"q-{uuid.uuid4().hex[:12]}"
    mapping = spec(endpoint, name)

    async def open_source() -> None:
        source = SQS.source(mapping)
        try:
            await source.open()
        finally:
            await source.close()

    with pytest.raises(SourceUnavailable):  # nothing listens yet
        run(open_source())
    server.start()
    try:
        client = make_client(endpoint, REGION)
        url = client.create_queue(QueueName=name)["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody="before")

        async def through_an_outage() -> tuple[list[Any], list[Any]]:
            source = SQS.source(mapping)
            await source.open()
            first = await source.receive(10, 5)
            await source.ack(first)
            server.stop()
            with pytest.raises(SourceUnavailable):
                await source.receive(10, 1)
            await source.close()
            server.start()  # moto keeps no state across restarts: the queue is made again
            url = make_client(endpoint, REGION).create_queue(QueueName=name)["QueueUrl"]
            make_client(endpoint, REGION).send_message(QueueUrl=url, MessageBody="after")
            reopened = SQS.source(mapping)
            await reopened.open()
            try:
                return first, await reopened.receive(10, 5)
            finally:
                await reopened.close()

        first, after = run(through_an_outage())
        assert [m.record["body"] for m in first] == ["before"]
        assert [m.record["body"] for m in after] == ["after"]
    finally:
        server.cleanup()


def test_publish_sends_the_body_with_string_attributes(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    attributes = {"RequestID": str(uuid.uuid4()), "ErrorCode": "200", "ErrorMessage": "boom"}
    run(SQS.publish(arn, sqs_endpoint, b'{"failed": true}', attributes))
    received = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
    (message,) = received["Messages"]
    assert message["Body"] == '{"failed": true}'
    assert {k: v["StringValue"] for k, v in message["MessageAttributes"].items()} == attributes
    assert {v["DataType"] for v in message["MessageAttributes"].values()} == {"String"}


def test_publish_sends_number_attributes_with_data_type_number(
    sqs_endpoint: str, sqs: Any, queue: tuple[str, str]
) -> None:
    name, url = queue
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    run(SQS.publish(arn, sqs_endpoint, b"{}", {"ErrorCode": NumberAttribute(200), "RequestID": "r-1"}))
    received = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
    (message,) = received["Messages"]
    assert message["MessageAttributes"] == {
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "RequestID": {"DataType": "String", "StringValue": "r-1"},
    }


def test_publish_to_a_missing_queue_is_unavailable(sqs_endpoint: str) -> None:
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SourceUnavailable):
        run(SQS.publish(arn, sqs_endpoint, b"x"))


@pytest.mark.parametrize(
    ("queue_name", "overrides", "message"),
    [
        ("q", {"starting_position": "LATEST"}, "StartingPosition is not valid for SQS event sources."),
        (
            "q",
            {"batch_size": 11},
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ),
        (
            "q.fifo",
            {"batch_size": 5, "maximum_batching_window_in_seconds": 1},
            "Batching window is not supported for FIFO queues",
        ),
        ("q.fifo", {"batch_size": 11}, "Maximum batch size must be between 1 and 10 inclusive"),
    ],
)
def test_validate_refuses_what_aws_refuses_for_sqs(
    queue_name: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameterValueException) as raised:
        SQS.validate(spec("http://127.0.0.1:1", queue_name, **overrides))
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("queue_name", "overrides"),
    [
        ("q", {"batch_size": 10}),
        ("q", {"batch_size": 10000, "maximum_batching_window_in_seconds": 1}),
        ("q.fifo", {"batch_size": 10}),
    ],
)
def test_validate_accepts_what_aws_accepts_for_sqs(queue_name: str, overrides: dict[str, Any]) -> None:
    SQS.validate(spec("http://127.0.0.1:1", queue_name, **overrides))
