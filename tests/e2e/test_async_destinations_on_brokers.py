"""Event invocations' records delivered into real queues end to end: OnSuccess/OnFailure destinations and
the function's DeadLetterConfig on an SQS-compatible server (moto), an OnFailure destination on the
RabbitMQ at 127.0.0.1:5672, and a private broker stopped while an event finishes.

What arrives is compared with AWS's recordings (tests/aws-recordings/lambda/test_lambda_destinations):
the function here answers as the recorded test functions did, so whole records compare, stack traces
aside (their line numbers are the recorded handler's). The servers wait 1 s between retries
(``LAMBDAD_ASYNC_RETRY_DELAYS``) instead of AWS's minutes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from lambdad.events.sources.sqs import make_client
from tests.brokers import BrokerProcess, moto_server
from tests.e2e.invoke_support import deploy_python, eventually, log_messages, unique
from tests.e2e.redis_support import ServerWithEnv
from tests.recordings import differences, recorded

pytestmark = pytest.mark.e2e
DESTINATIONS = "test_lambda_destinations.snapshot.json"
REGION = "us-east-1"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:main:b-5f1c6f3e-0000-4000-8000-000000000002"

# As AWS's recorded test functions: {"raise_error": ...} and {"message": ...} fail with their messages;
# anything else is answered with the event and the context the recording shows.
FUNCTION = """
import time


def handler(event, context):
    print("ran " + str(event.get("id", "")))
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if "raise_error" in event:
        raise Exception("Test exception (this is intentional)")
    if "message" in event:
        raise Exception("intentional failure")
    return {
        "event": event,
        "context": {
            "invoked_function_arn": context.invoked_function_arn,
            "function_version": context.function_version,
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "client_context": context.client_context,
        },
    }
"""


def start_lambdad(directory: Path, sources: dict[str, str], retry_delays: str) -> ServerWithEnv:
    env = {
        "LAMBDAD_EVENT_SOURCES": ",".join(f"{service}={url}" for service, url in sources.items()),
        "LAMBDAD_ASYNC_RETRY_DELAYS": retry_delays,
        "LAMBDAD_ASYNC_THROTTLE_BACKOFF_MAX": "1",
    }
    server = ServerWithEnv(directory / "data", env=env)
    server.start(timeout=60)
    return server


def stop(server: ServerWithEnv) -> None:
    if server.process is not None and server.process.poll() is None:
        server.stop(timeout=60)


@pytest.fixture(scope="module")
def moto() -> Iterator[BrokerProcess]:
    broker = moto_server().start()
    yield broker
    broker.cleanup()


@pytest.fixture(scope="module")
def server(moto: BrokerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerWithEnv]:
    running = start_lambdad(
        tmp_path_factory.mktemp("lambdad"), {"sqs": endpoint(moto), "mq": RABBITMQ}, retry_delays="1,1"
    )
    yield running
    stop(running)


def endpoint(broker: BrokerProcess) -> str:
    return f"http://127.0.0.1:{broker.port}"


def new_queue(sqs: Any, name: str | None = None) -> tuple[str, str]:
    """A queue of the test's own: (ARN, URL)."""
    url = sqs.create_queue(QueueName=name or f"dest-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(arn), str(url)


def receive(sqs: Any, url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """``count`` messages from the queue (with their message attributes), deleted once read."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages.append(message)
    assert len(messages) >= count, f"{len(messages)} of {count} messages arrived within {timeout}s"
    return messages


def send(client: Any, name: str, event: dict[str, Any]) -> str:
    answer = client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))
    assert answer["StatusCode"] == 202
    return str(answer["ResponseMetadata"]["RequestId"])


def runs(server: ServerWithEnv, name: str, marker: str) -> int:
    return sum(1 for m in log_messages(server, name) if m.strip() == f"ran {marker}")


def as_received(message: dict[str, Any]) -> dict[str, Any]:
    """An SQS message as the recordings keep it: the body parsed, SQS's own Attributes aside."""
    return {**{k: v for k, v in message.items() if k != "Attributes"}, "Body": json.loads(message["Body"])}


def without_stack_trace(message: dict[str, Any]) -> dict[str, Any]:
    body = dict(message["Body"])
    if isinstance(body.get("responsePayload"), dict):
        body["responsePayload"] = {k: v for k, v in body["responsePayload"].items() if k != "stackTrace"}
    return {**message, "Body": body}


def amqp(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_success_and_failure_records_reach_sqs_destinations_as_aws_sends_them(
    server: ServerWithEnv, moto: BrokerProcess
) -> None:
    client, sqs = server.client(), make_client(endpoint(moto), REGION)
    arn, url = new_queue(sqs)
    name = unique("dest")
    deploy_python(client, name, FUNCTION)
    client.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": arn}, "OnFailure": {"Destination": arn}},
    )
    succeeded = send(client, name, {})
    failed = send(client, name, {"raise_error": 1})

    messages = {m["Body"]["requestContext"]["requestId"]: m for m in map(as_received, receive(sqs, url, 2))}
    success = recorded(
        DESTINATIONS, "test_assess_lambda_destination_invocation[Success-payload0]", "receive_message_result"
    )["Messages"][0]
    failure = recorded(
        DESTINATIONS, "test_assess_lambda_destination_invocation[payload1]", "receive_message_result"
    )["Messages"][0]
    assert differences(messages[succeeded], success) == []
    assert differences(without_stack_trace(messages[failed]), without_stack_trace(failure)) == []
    assert messages[succeeded]["Body"]["responsePayload"]["context"]["aws_request_id"] == succeeded
    assert messages[failed]["Body"]["responsePayload"]["requestId"] == failed


def test_retries_exhausted_record_counts_every_attempt(server: ServerWithEnv, moto: BrokerProcess) -> None:
    client, sqs = server.client(), make_client(endpoint(moto), REGION)
    arn, url = new_queue(sqs)
    name = unique("retried")
    deploy_python(client, name, FUNCTION)
    client.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    marker = unique("m")
    request_id = send(client, name, {"message": marker, "id": marker})

    [message] = map(as_received, receive(sqs, url, 1))
    wanted = recorded(DESTINATIONS, "TestLambdaDestinationSqs::test_retries", "queue_destination_payload")
    expected = {k: v for k, v in wanted["Messages"][0].items() if k != "Attributes"}
    # The recorded payload had no "id"; ours names the run to count it.
    expected["Body"] = {**expected["Body"], "requestPayload": {"message": "<test-msg-id>", "id": "<id>"}}
    assert differences(without_stack_trace(message), without_stack_trace(expected)) == []
    assert message["Body"]["requestContext"]["requestId"] == request_id
    assert runs(server, name, marker) == 3


def test_an_event_whose_first_retry_would_come_too_late_ends_with_event_age_exceeded(
    moto: BrokerProcess, tmp_path: Path
) -> None:
    # The first retry would come 90 s later, past MaximumEventAgeInSeconds 60: AWS ends it at once.
    server = start_lambdad(tmp_path, {"sqs": endpoint(moto)}, retry_delays="90,90")
    try:
        client, sqs = server.client(), make_client(endpoint(moto), REGION)
        arn, url = new_queue(sqs)
        name = unique("aged")
        deploy_python(client, name, FUNCTION)
        client.put_function_event_invoke_config(
            FunctionName=name,
            MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
        marker = unique("m")
        send(client, name, {"message": marker})
        [message] = map(as_received, receive(sqs, url, 1))
    finally:
        stop(server)
    wanted = recorded(DESTINATIONS, "TestLambdaDestinationSqs::test_maxeventage", "no_retry_failure_message")
    expected = {k: v for k, v in wanted.items() if k != "Attributes"}
    assert differences(without_stack_trace(message), without_stack_trace(expected)) == []
    assert message["Body"]["requestPayload"] == {"message": marker}


def test_a_dead_letter_message_carries_awss_attributes(server: ServerWithEnv, moto: BrokerProcess) -> None:
    client, sqs = server.client(), make_client(endpoint(moto), REGION)
    arn, url = new_queue(sqs)
    name = unique("dlq")
    deploy_python(client, name, FUNCTION, DeadLetterConfig={"TargetArn": arn})
    client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    request_id = send(client, name, {"raise_error": 1})

    [message] = map(as_received, receive(sqs, url, 1))
    wanted = recorded(DESTINATIONS, "TestLambdaDLQ::test_dead_letter_queue", "receive_result")["Messages"][0]
    assert differences(message, wanted) == []
    assert message["MessageAttributes"]["RequestID"]["StringValue"] == request_id


def test_an_on_failure_record_reaches_a_rabbitmq_queue(server: ServerWithEnv) -> None:
    client = server.client()
    queue = f"lambdad-test-{uuid.uuid4().hex[:12]}"

    async def declare() -> None:
        async with await aio_pika.connect(RABBITMQ) as connection:
            await (await connection.channel()).declare_queue(queue, durable=True)

    async def take() -> aio_pika.abc.AbstractIncomingMessage | None:
        async with await aio_pika.connect(RABBITMQ) as connection:
            channel = await connection.channel()
            found = await (await channel.get_queue(queue)).get(fail=False, no_ack=True)
            return found

    async def delete() -> None:
        async with await aio_pika.connect(RABBITMQ) as connection:
            await (await connection.channel()).queue_delete(queue)

    amqp(declare())
    try:
        name = unique("to-mq")
        deploy_python(client, name, FUNCTION)
        client.put_function_event_invoke_config(
            FunctionName=name,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": f"{BROKER_ARN}/{queue}"}},
        )
        request_id = send(client, name, {"raise_error": 1})
        message = eventually(lambda: amqp(take()), timeout=60, interval=0.3)
    finally:
        amqp(delete())
    record = json.loads(message.body)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == {"raise_error": 1}
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


@pytest.fixture
def private_moto() -> Iterator[BrokerProcess]:
    broker = moto_server().start()
    yield broker
    broker.cleanup()


def stored_events(server: ServerWithEnv) -> list[tuple[str, str | None]]:
    with sqlite3.connect(server.data_dir / "lambdad.db", timeout=10) as connection:
        return list(connection.execute("SELECT request_id, outcome FROM async_events"))


def test_a_record_waits_in_the_store_while_its_broker_is_down_and_the_function_runs_once(
    private_moto: BrokerProcess, tmp_path: Path
) -> None:
    server = start_lambdad(tmp_path, {"sqs": endpoint(private_moto)}, retry_delays="1,1")
    try:
        client, sqs = server.client(), make_client(endpoint(private_moto), REGION)
        queue_name = f"dest-{uuid.uuid4().hex[:12]}"
        arn, _ = new_queue(sqs, queue_name)
        name = unique("outage")
        deploy_python(client, name, FUNCTION)
        client.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
        )
        marker = unique("once")
        request_id = send(client, name, {"id": marker, "sleep": 2})
        private_moto.stop()  # while the function still runs

        eventually(lambda: stored_events(server) == [(request_id, "Success")], timeout=30, interval=0.2)
        time.sleep(3)  # a few delivery attempts fail meanwhile
        assert stored_events(server) == [(request_id, "Success")]

        private_moto.start()
        # moto keeps its queues in memory: the restarted server has to be given the queue again.
        _, url = new_queue(sqs, queue_name)
        [message] = map(as_received, receive(sqs, url, 1, timeout=30))
        assert message["Body"]["requestContext"]["requestId"] == request_id
        assert message["Body"]["requestContext"]["condition"] == "Success"
        assert message["Body"]["responsePayload"]["event"] == {"id": marker, "sleep": 2}
        eventually(lambda: stored_events(server) == [], timeout=10)
        assert runs(server, name, marker) == 1
    finally:
        stop(server)
