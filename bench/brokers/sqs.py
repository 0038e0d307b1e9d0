"""SQS (the ``sqs`` source) for the event-source benchmark: queues on a moto server of the bench's own.

``start()`` starts moto's server on a free port and returns its URL (the lambdad server under test needs
it as ``LAMBDAD_EVENT_SOURCES=sqs=URL``); ``stop()`` stops it.

moto slows down as a queue grows (here: 100 messages sent in 0.2 s, 2000 in 79 s), so keep runs to a
few hundred messages (``MESSAGES``); the rates below publish and consume in rounds of ``ROUND``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.brokers import body, mapping_spec, rate_through_source
from lambdad.events.sources.sqs import SQS, QueueArn, make_client
from tests.brokers import BrokerProcess, moto_server

REGION = "us-east-1"
BATCH = 10  # SQS's most per SendMessageBatch, ReceiveMessage and DeleteMessageBatch
ROUND = 100
MESSAGES = 300

_server: BrokerProcess | None = None


def start() -> str:
    """Start moto's server (once); its URL."""
    global _server
    if _server is None:
        _server = moto_server().start()
    return endpoint()


def stop() -> None:
    global _server
    if _server is not None:
        _server.cleanup()
        _server = None


def endpoint() -> str:
    assert _server is not None, "start() the SQS server first"
    return f"http://127.0.0.1:{_server.port}"


def _client() -> Any:
    return make_client(endpoint(), REGION)


def _url(arn: str) -> str:
    queue = QueueArn.parse(arn)
    return str(_client().get_queue_url(QueueName=queue.name)["QueueUrl"])


def new_arn() -> str:
    client = _client()
    url = client.create_queue(QueueName=f"lambdad-bench-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return str(
        client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )


def mapping_params(arn: str) -> dict[str, Any]:
    return {"EventSourceArn": arn, "BatchSize": BATCH}


def remove(arn: str) -> None:
    _client().delete_queue(QueueUrl=_url(arn))


def publish_many(arn: str, n: int, first: int = 0) -> None:
    """Send ``n`` messages, ten per SendMessageBatch."""
    client, url = _client(), _url(arn)
    for start in range(first, first + n, BATCH):
        ids = range(start, min(first + n, start + BATCH))
        client.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body(i).decode()} for i in ids]
        )


def _consume(arn: str, n: int) -> None:
    client, url = _client(), _url(arn)
    done, deadline = 0, time.monotonic() + 120
    while done < n and time.monotonic() < deadline:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            client.delete_message_batch(QueueUrl=url, Entries=entries)
            done += len(messages)
    if done < n:
        raise TimeoutError(f"only {done} of {n} messages arrived")


def raw_seconds(n: int) -> float:
    """boto3 alone: send, receive and delete ``n`` messages ten at a time, in rounds of ``ROUND``."""
    arn = new_arn()
    try:
        started = time.perf_counter()
        for first in range(0, n, ROUND):
            count = min(ROUND, n - first)
            publish_many(arn, count, first)
            _consume(arn, count)
        return time.perf_counter() - started
    finally:
        remove(arn)


def source_rate(n: int, batch_size: int = BATCH) -> float:
    """Events/s for the same rounds with lambdad's SQS source as the consumer."""
    arn = new_arn()
    window = 1 if batch_size > BATCH else 0
    try:
        spec = mapping_spec(SQS, arn, endpoint(), batch_size, maximum_batching_window_in_seconds=window)
        return rate_through_source(SQS, spec, n, lambda count, first: publish_many(arn, count, first), ROUND)
    finally:
        remove(arn)
