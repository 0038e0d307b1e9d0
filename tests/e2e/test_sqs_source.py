"""SQS event source mappings end to end: a real lambdad, moto's SQS server, functions in real sandboxes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdad.events.sources.sqs import make_client
from tests.brokers import moto_server
from tests.e2e.invoke_support import eventually
from tests.e2e.queue_support import Reporter, delete_mapping, lambdad_with_sources, reporter_on, wait_state
from tests.e2e.redis_support import ServerWithEnv

pytestmark = pytest.mark.e2e
RECORDINGS = Path(__file__).parents[1] / "aws-recordings/lambda/event_source_mapping"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    server = moto_server().start()
    yield f"http://127.0.0.1:{server.port}"
    server.cleanup()


@pytest.fixture(scope="module")
def server(sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerWithEnv]:
    yield from lambdad_with_sources(tmp_path_factory.mktemp("lambdad"), sqs=sqs_endpoint)


@pytest.fixture
def reporter(server: ServerWithEnv) -> Iterator[Reporter]:
    yield from reporter_on(server)


@pytest.fixture
def sqs(sqs_endpoint: str) -> Any:
    return make_client(sqs_endpoint, REGION)


def new_queue(sqs: Any, **attributes: str) -> tuple[str, str]:
    """A queue of the test's own: (ARN, URL)."""
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}", Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(arn), url


def waiting(sqs: Any, url: str) -> int:
    """Messages in the queue, visible or in flight."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def recorded_record() -> dict[str, Any]:
    snapshot = json.loads((RECORDINGS / "test_lambda_integration_sqs.snapshot.json").read_text())
    key = next(k for k in snapshot if k.endswith("test_message_body_and_attributes_passed_correctly"))
    return dict(
        snapshot[key]["recorded-content"]["first_attempt"]["Messages"][0]["Body"]["event"]["Records"][0]
    )


def test_messages_invoke_the_function_with_aws_sqs_records_and_are_deleted(
    server: ServerWithEnv, sqs: Any, reporter: Reporter
) -> None:
    client = server.client()
    arn, url = new_queue(sqs)
    for index in range(3):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"n": index}),
            MessageAttributes={"Title": {"DataType": "String", "StringValue": "The Whistler"}},
        )
    mapping = client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=reporter.name, BatchSize=10, MaximumBatchingWindowInSeconds=1
    )
    assert mapping["State"] == "Creating"
    try:
        wait_state(client, mapping["UUID"], "Enabled")
        bodies = reporter.wait_bodies(3)
        assert sorted(json.loads(body)["n"] for body in bodies) == [0, 1, 2]
        record = reporter.invocations()[0]["event"]["Records"][0]
        expected = recorded_record()
        assert list(record) == list(expected)
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == arn
        assert record["messageAttributes"]["Title"] == expected["messageAttributes"]["Title"]
        eventually(lambda: waiting(sqs, url) == 0)
    finally:
        delete_mapping(client, mapping["UUID"])
        sqs.delete_queue(QueueUrl=url)


def test_a_failing_message_comes_back_after_the_visibility_timeout_and_the_redrive_policy_moves_it(
    server: ServerWithEnv, sqs: Any, reporter: Reporter
) -> None:
    client = server.client()
    dlq_arn, dlq_url = new_queue(sqs)
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    arn, url = new_queue(sqs, VisibilityTimeout="1", RedrivePolicy=redrive)
    sqs.send_message(QueueUrl=url, MessageBody="fail-always")
    mapping = client.create_event_source_mapping(EventSourceArn=arn, FunctionName=reporter.name, BatchSize=1)
    try:
        moved = eventually(
            lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages"), timeout=30
        )
        assert [m["Body"] for m in moved] == ["fail-always"]
        counts = [
            invocation["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"]
            for invocation in reporter.invocations()
        ]
        assert counts == ["1", "2"]
        assert waiting(sqs, url) == 0
    finally:
        delete_mapping(client, mapping["UUID"])
        sqs.delete_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=dlq_url)


def test_without_a_redrive_policy_a_failing_message_stays_in_the_queue_past_ten_deliveries(
    server: ServerWithEnv, sqs: Any, reporter: Reporter
) -> None:
    client = server.client()
    arn, url = new_queue(sqs, VisibilityTimeout="0")  # back at once: many deliveries quickly
    sqs.send_message(QueueUrl=url, MessageBody="fail-always")
    mapping = client.create_event_source_mapping(EventSourceArn=arn, FunctionName=reporter.name, BatchSize=1)
    try:
        # lambdad gives up on other queue brokers' messages after 10 deliveries; SQS keeps it, as AWS.
        reporter.wait_bodies(12, timeout=60)
    finally:
        delete_mapping(client, mapping["UUID"])
    assert waiting(sqs, url) == 1
    sqs.delete_queue(QueueUrl=url)


def test_report_batch_item_failures_deletes_only_the_messages_that_succeeded(
    server: ServerWithEnv, sqs: Any, reporter: Reporter
) -> None:
    client = server.client()
    arn, url = new_queue(sqs, VisibilityTimeout="3")
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "ok", "MessageBody": "fine"}, {"Id": "bad", "MessageBody": "fail-item"}],
    )
    mapping = client.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=reporter.name,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    try:
        # The failed message comes back (after its visibility timeout) and fails again; the good one
        # was deleted after the first invocation and never comes back.
        eventually(lambda: reporter.bodies().count("fail-item") >= 2, timeout=30)
        assert reporter.bodies().count("fine") == 1
    finally:
        delete_mapping(client, mapping["UUID"])
        sqs.delete_queue(QueueUrl=url)


def test_sqs_rules_are_checked_when_the_mapping_is_created(server: ServerWithEnv, reporter: Reporter) -> None:
    client = server.client()
    with pytest.raises(client.exceptions.InvalidParameterValueException) as raised:
        client.create_event_source_mapping(
            EventSourceArn=f"arn:aws:sqs:{REGION}:123456789012:orders.fifo",
            FunctionName=reporter.name,
            BatchSize=5,
            MaximumBatchingWindowInSeconds=1,
        )
    assert raised.value.response["Error"]["Message"] == "Batching window is not supported for FIFO queues"


def test_a_function_dead_letter_queue_on_sqs_gets_failed_event_invocations(
    server: ServerWithEnv, sqs: Any, reporter: Reporter
) -> None:
    client = server.client()
    dlq_arn, dlq_url = new_queue(sqs)
    try:
        client.update_function_configuration(
            FunctionName=reporter.name, DeadLetterConfig={"TargetArn": dlq_arn}
        )
        client.get_waiter("function_updated_v2").wait(FunctionName=reporter.name, WaiterConfig={"Delay": 0.2})
        client.put_function_event_invoke_config(FunctionName=reporter.name, MaximumRetryAttempts=0)
        client.invoke(FunctionName=reporter.name, InvocationType="Event", Payload=b'{"x": "fail-always"}')
        messages = eventually(
            lambda: sqs.receive_message(
                QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
            ).get("Messages"),
            timeout=60,
        )
        (message,) = messages
        assert json.loads(message["Body"]) == {"x": "fail-always"}
        assert set(message["MessageAttributes"]) >= {"RequestID", "ErrorCode", "ErrorMessage"}
    finally:
        sqs.delete_queue(QueueUrl=dlq_url)
