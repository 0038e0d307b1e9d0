"""An SQS event source mapping polls with its function's execution role (``--auth sigv4``, moto's SQS
server): while the role may receive from the queue its messages reach the function; once the role loses
the permission the messages stay in the queue and the poller's last result says why (AWS's words for the
missing permission); given back, the poller resumes and the messages arrive. A schedule's dead-letter
message, likewise, is sent only where its role may send."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lambdad.events.sources.sqs import make_client
from tests.brokers import moto_server
from tests.e2e.invoke_support import deploy_python, eventually, log_messages, unique
from tests.e2e.mapping_support import delete_mapping, wait_state
from tests.e2e.signed_support import client, lambda_role, signed_server
from tests.support import Server

pytestmark = pytest.mark.e2e
PRINTER = """
def handler(event, context):
    for record in event["Records"]:
        print("BODY " + record["body"])
"""


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    server = moto_server().start()
    yield f"http://127.0.0.1:{server.port}"
    server.cleanup()


@pytest.fixture(scope="module")
def server(sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = signed_server(tmp_path_factory.mktemp("lambdad") / "data")
    running.env["LAMBDAD_EVENT_SOURCES"] = f"sqs={sqs_endpoint}"
    running.start(timeout=60)
    yield running
    running.stop(timeout=60)


def overview(server: Server, mapping: str) -> dict[str, Any]:
    """The mapping as ``GET /_lambdad/event-source-mappings`` shows it (AWS answers no
    LastProcessingResult for SQS mappings; lambdad's own view has the poller's)."""
    rows = server.own("/_lambdad/event-source-mappings", timeout=5)["EventSourceMappings"]
    return next(m for m in rows if m["UUID"] == mapping)


def bodies(server: Server, name: str) -> list[str]:
    return [m.split("BODY ", 1)[1].strip() for m in log_messages(server, name) if "BODY " in m]


def test_the_poller_acts_with_the_execution_role(server: Server, sqs_endpoint: str) -> None:
    sqs = make_client(sqs_endpoint, "us-east-1")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    iam = client(server, "iam")
    lam = client(server, "lambda")
    role_name = unique("poller")
    receive = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": arn,
            }
        ],
    }
    role = lambda_role(iam, role_name, *receive["Statement"])
    name = unique("polled")
    deploy_python(lam, name, PRINTER, Role=role)
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, BatchSize=1)["UUID"]
    try:
        wait_state(lam, mapping, "Enabled")
        sqs.send_message(QueueUrl=url, MessageBody="one")
        eventually(lambda: bodies(server, name) == ["one"], timeout=30)

        iam.delete_role_policy(RoleName=role_name, PolicyName="given")
        sqs.send_message(QueueUrl=url, MessageBody="two")
        expected = (
            "PROBLEM: The provided execution role does not have permissions to call ReceiveMessage on SQS"
        )
        eventually(lambda: overview(server, mapping)["LastProcessingResult"] == expected, timeout=30)
        assert overview(server, mapping)["LastError"] == expected.removeprefix("PROBLEM: ")
        assert bodies(server, name) == ["one"]

        iam.put_role_policy(RoleName=role_name, PolicyName="given", PolicyDocument=json.dumps(receive))
        eventually(lambda: bodies(server, name) == ["one", "two"], timeout=60)
    finally:
        delete_mapping(lam, mapping)


def test_a_schedule_dead_letters_only_where_its_role_may_send(server: Server, sqs_endpoint: str) -> None:
    """A schedule whose target is missing sends its event to its dead-letter queue when its role may
    ``sqs:SendMessage`` there; a role that may not gets nothing sent (the server log says why)."""
    sqs = make_client(sqs_endpoint, "us-east-1")
    iam = client(server, "iam")
    scheduler = client(server, "scheduler")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    queues = {}
    for case in ("may-send", "may-not"):
        url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        role_name = unique(f"sched-{case}")
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        if case == "may-send":
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn}],
            }
            iam.put_role_policy(RoleName=role_name, PolicyName="dlq", PolicyDocument=json.dumps(policy))
        queues[case] = url
        scheduler.create_schedule(
            Name=unique(case),
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": f"arn:aws:lambda:us-east-1:000000000000:function:missing-{uuid.uuid4().hex[:8]}",
                "RoleArn": role,
                "Input": json.dumps({"case": case}),
                "RetryPolicy": {"MaximumRetryAttempts": 0},
                "DeadLetterConfig": {"Arn": arn},
            },
        )
    sent = sqs.receive_message(QueueUrl=queues["may-send"], WaitTimeSeconds=20)["Messages"]
    assert json.loads(sent[0]["Body"]) == {"case": "may-send"}
    assert "Messages" not in sqs.receive_message(QueueUrl=queues["may-not"], WaitTimeSeconds=3)
    said = " ".join(server.log_path.read_text().split())
    assert "its role may not send to" in said
