"""SQS queues (``arn:aws:sqs:REGION:ACCOUNT:QUEUE``) on any SQS-compatible endpoint, through boto3.

The endpoint is ``Settings.event_sources["sqs"]`` (``http://host:port``; credentials, if the server
wants real ones, as ``http://KEY:SECRET@host:port``). boto3 blocks, so every call runs in a small
thread pool of the source's own: a 20 second long poll never holds a thread other code needs.

Acknowledging is DeleteMessageBatch. Releasing does nothing, as on AWS: the message becomes visible
again when the queue's visibility timeout ends, its ApproximateReceiveCount grows, and the queue's own
RedrivePolicy moves it to its dead-letter queue after maxReceiveCount receives.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from lambdad.errors import InvalidParameterValueException
from lambdad.events.sources.base import NumberAttribute, SourceMessage, SourceSpec, SourceUnavailable
from lambdad.events.sources.filter_views import json_or_text

# SQS answers at most 10 messages per ReceiveMessage and long-polls at most 20 seconds.
RECEIVE_LIMIT = 10
LONGEST_POLL = 20
# A mapping may ask for up to 10000 messages per batch, but only with a batching window (and never
# more than 10 from a FIFO queue).
BATCH_LIMIT_WITHOUT_WINDOW = 10
BATCH_LIMIT = 10000

T = TypeVar("T")


@dataclass(frozen=True)
class QueueArn:
    """The parts of ``arn:aws:sqs:REGION:ACCOUNT:QUEUE``."""

    region: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> QueueArn:
        parts = arn.split(":")
        if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"] or not all(parts[3:]):
            raise InvalidParameterValueException(f"Invalid SQS queue ARN: {arn}")
        return cls(region=parts[3], account=parts[4], name=parts[5])

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")


def make_client(endpoint: str, region: str) -> Any:
    """A boto3 SQS client for ``endpoint``: user and password in the URL are the access key and
    secret; without them any credentials do (SQS-compatible servers rarely check)."""
    url = urlsplit(endpoint)
    netloc = url.hostname or ""
    if url.port:
        netloc = f"{netloc}:{url.port}"
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=urlunsplit((url.scheme, netloc, url.path, "", "")),
        region_name=region,
        aws_access_key_id=url.username or "lambdad",
        aws_secret_access_key=url.password or "lambdad",
        # Longer than the longest poll; one retry, so an endpoint that is down is reported quickly.
        config=Config(
            connect_timeout=3, read_timeout=LONGEST_POLL + 10, retries={"max_attempts": 2, "mode": "standard"}
        ),
    )


def _unavailable(operation: str, error: Exception) -> SourceUnavailable:
    """``error`` in AWS's words for an SQS event source ("Error occurred while ReceiveMessage...")."""
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        if code in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"):
            code = "AWS.SimpleQueueService.NonExistentQueue"
        return SourceUnavailable(
            f"Error occurred while {operation}. SQS Error Code: {code}. "
            f"SQS Error Message: {details.get('Message', '')}"
        )
    return SourceUnavailable(f"Error occurred while {operation}. {error}")


def message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """An SQS message attribute as the Lambda event carries it (camelCase, binary as base64)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    shaped["stringListValues"] = list(value.get("StringListValues", []))
    shaped["binaryListValues"] = [
        base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])
    ]
    shaped["dataType"] = value["DataType"]
    return shaped


class SqsSource:
    """One mapping's poller connection to one queue."""

    ordered = False
    # Failed messages are the queue's business (its RedrivePolicy), never given up on by the poller.
    broker_dead_letters = True

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.arn = QueueArn.parse(spec.event_source_arn)
        self._client: Any = None
        self._queue_url = ""
        self._threads: ThreadPoolExecutor | None = None

    async def _call(self, operation: str, function: Callable[..., T], **params: Any) -> T:
        if self._threads is None:
            raise SourceUnavailable("the SQS source is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._threads, lambda: function(**params))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise _unavailable(operation, error) from error

    async def open(self) -> None:
        # Two threads: a long poll and an acknowledgement can be under way at once.
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"sqs-{self.spec.uuid[:8]}")
        self._client = make_client(self.spec.endpoint, self.arn.region)
        response = await self._call(
            "GetQueueUrl",
            self._client.get_queue_url,
            QueueName=self.arn.name,
            QueueOwnerAWSAccountId=self.arn.account,
        )
        self._queue_url = response["QueueUrl"]

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        received: list[SourceMessage] = []
        while len(received) < max_messages:
            # Long-poll until the first message arrives; after that, take what is there at once.
            wait = 0 if received else round(min(LONGEST_POLL, max(0.0, deadline - loop.time())))
            response = await self._call(
                "ReceiveMessage",
                self._client.receive_message,
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(RECEIVE_LIMIT, max_messages - len(received)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            received.extend(self._message(message) for message in messages)
            # Less than a second left is not worth another poll (SQS waits whole seconds).
            if not messages and (received or wait == 0 or loop.time() >= deadline):
                break
        return received

    def _message(self, message: Mapping[str, Any]) -> SourceMessage:
        attributes = dict(message.get("Attributes", {}))
        body = message["Body"]
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": attributes,
            "messageAttributes": {
                name: message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.spec.event_source_arn,
            "awsRegion": self.arn.region,
        }
        return SourceMessage(
            item_id=message["MessageId"],
            record=record,
            filter_view={**record, "body": json_or_text(body)},
            delivery_count=int(attributes.get("ApproximateReceiveCount", "1")),
            sent_at=int(attributes.get("SentTimestamp", "0")) / 1000,
            size=len(body.encode()),
            token=message["ReceiptHandle"],
        )

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        for start in range(0, len(messages), RECEIVE_LIMIT):
            chunk = messages[start : start + RECEIVE_LIMIT]
            # A delete that fails (an expired receipt handle) leaves the message to come back: at
            # least once, never lost.
            await self._call(
                "DeleteMessageBatch",
                self._client.delete_message_batch,
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": m.token} for index, m in enumerate(chunk)],
            )

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        """Nothing to do: as on AWS, the message comes back when its visibility timeout ends."""

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        return {"Records": [message.record for message in messages]}

    async def lag(self) -> int | None:
        response = await self._call(
            "GetQueueAttributes",
            self._client.get_queue_attributes,
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages"],
        )
        return int(response["Attributes"]["ApproximateNumberOfMessages"])

    async def close(self) -> None:
        if self._threads is not None:
            # A long poll still running finishes in its thread; what it took comes back after the
            # visibility timeout.
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        self._client = None


class SqsKind:
    """SQS queues as event sources and as destinations."""

    service = "sqs"

    def __init__(self) -> None:
        # Publishing reuses one client per endpoint and region (boto3 clients are thread-safe; making
        # one costs tens of milliseconds).
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def _client(self, endpoint: str, region: str) -> Any:
        with self._clients_lock:
            client = self._clients.get((endpoint, region))
            if client is None:
                client = self._clients[(endpoint, region)] = make_client(endpoint, region)
            return client

    def validate(self, spec: SourceSpec) -> None:
        arn = QueueArn.parse(spec.event_source_arn)
        if spec.starting_position is not None:
            raise InvalidParameterValueException("StartingPosition is not valid for SQS event sources.")
        window = spec.maximum_batching_window_in_seconds
        if arn.fifo and window > 0:
            raise InvalidParameterValueException("Batching window is not supported for FIFO queues")
        if arn.fifo and not 1 <= spec.batch_size <= BATCH_LIMIT_WITHOUT_WINDOW:
            raise InvalidParameterValueException("Maximum batch size must be between 1 and 10 inclusive")
        if spec.batch_size > BATCH_LIMIT_WITHOUT_WINDOW and window <= 0:
            raise InvalidParameterValueException(
                "Maximum batch window in seconds must be greater than 0 "
                "if maximum batch size is greater than 10"
            )
        if not 1 <= spec.batch_size <= BATCH_LIMIT:
            raise InvalidParameterValueException("Maximum batch size must be between 1 and 10000 inclusive")

    def source(self, spec: SourceSpec) -> SqsSource:
        return SqsSource(spec)

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        queue = QueueArn.parse(arn)

        def send() -> None:
            client = self._client(endpoint, queue.region)
            url = client.get_queue_url(QueueName=queue.name, QueueOwnerAWSAccountId=queue.account)["QueueUrl"]
            params: dict[str, Any] = {
                "QueueUrl": url,
                "MessageBody": body.decode("utf-8", errors="replace"),
                # SQS refuses empty attribute values.
                "MessageAttributes": {
                    name: {"DataType": _data_type(value), "StringValue": value}
                    for name, value in (attributes or {}).items()
                    if value
                },
            }
            if queue.fifo:
                # A FIFO destination needs a group, and a deduplication id unless the queue derives
                # one from the content (each failure record is its own message).
                params["MessageGroupId"] = "lambdad"
                params["MessageDeduplicationId"] = uuid.uuid4().hex
            client.send_message(**params)

        try:
            await asyncio.to_thread(send)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise _unavailable("SendMessage", error) from error


def _data_type(value: str) -> str:
    return "Number" if isinstance(value, NumberAttribute) else "String"


SQS = SqsKind()
