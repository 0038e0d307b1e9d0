"""A schedule whose target cannot be invoked sends its event to its dead-letter queue on a real
SQS-compatible server (moto), with EventBridge Scheduler's message attributes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambdad.events.sources.sqs import make_client
from tests.brokers import BrokerProcess, moto_server
from tests.e2e.redis_support import ServerWithEnv
from tests.support import CREDENTIALS

pytestmark = pytest.mark.e2e
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/scheduler-role"


@pytest.fixture(scope="module")
def moto() -> Iterator[BrokerProcess]:
    broker = moto_server().start()
    yield broker
    broker.cleanup()


@pytest.fixture(scope="module")
def server(moto: BrokerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerWithEnv]:
    env = {
        "LAMBDAD_EVENT_SOURCES": f"sqs=http://127.0.0.1:{moto.port}",
        "LAMBDAD_SCHEDULE_TICK_SECONDS": "0.2",
    }
    running = ServerWithEnv(tmp_path_factory.mktemp("lambdad") / "data", env=env)
    running.start(timeout=60)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop(timeout=60)


def scheduler(server: ServerWithEnv) -> Any:
    return boto3.client(
        "scheduler",
        endpoint_url=server.endpoint,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
        **CREDENTIALS,
    )


def test_a_missing_target_function_sends_the_input_to_the_dead_letter_queue_with_awss_attributes(
    server: ServerWithEnv, moto: BrokerProcess
) -> None:
    sqs = make_client(f"http://127.0.0.1:{moto.port}", REGION)
    url = sqs.create_queue(QueueName=f"schedule-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = f"dl-{uuid.uuid4().hex[:8]}"
    target = f"arn:aws:lambda:{REGION}:000000000000:function:missing-{uuid.uuid4().hex[:8]}"
    when = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    event = json.dumps({"report": name})
    schedule_arn = scheduler(server).create_schedule(
        Name=name,
        ScheduleExpression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": target,
            "RoleArn": ROLE,
            "Input": event,
            "RetryPolicy": {"MaximumRetryAttempts": 0},
            "DeadLetterConfig": {"Arn": queue_arn},
        },
    )["ScheduleArn"]
    try:
        answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20, MessageAttributeNames=["All"])
        [message] = answer["Messages"]
    finally:
        scheduler(server).delete_schedule(Name=name)
        sqs.delete_queue(QueueUrl=url)
    assert message["Body"] == event
    attributes = message["MessageAttributes"]
    # AWS's documented dead-letter event: every attribute a String.
    assert {a["DataType"] for a in attributes.values()} == {"String"}
    values = {key: a["StringValue"] for key, a in attributes.items()}
    execution_id = values.pop("EXECUTION_ID")
    assert len(execution_id) > 0
    assert values == {
        "ERROR_CODE": "ResourceNotFoundException",
        "ERROR_MESSAGE": f"Function not found: {target}",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "IS_PAYLOAD_TRUNCATED": "false",
        "RETRY_ATTEMPTS": "0",
        "SCHEDULED_TIME": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SCHEDULE_ARN": schedule_arn,
        "TARGET_ARN": target,
    }
