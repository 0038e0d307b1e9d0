"""SQS (the ``sqs`` source) for the event-source benchmark: a queue of the bench's own on moto's server.

Without an ``endpoint`` the bench starts moto's server on a free port (and stops it on exit); the lambdad
server under test then needs ``LAMBDAD_EVENT_SOURCES='{"sqs": "<endpoint>"}'``.

moto slows down as a queue grows (here: 100 messages sent in 0.2 s, 2000 in 79 s), so the rates are
measured in rounds of ``ROUND`` messages, published then consumed, and a benchmark of a whole mapping
should keep the backlog as small (publish in rounds while the mapping consumes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from types import TracebackType
from typing import Any

from bench.brokers import body, drain, mapping_spec
from lambdad.events.sources.sqs import SQS, make_client
from tests.brokers import BrokerProcess, moto_server

REGION = "us-east-1"
ACCOUNT = "123456789012"
BATCH = 10  # SQS's most per SendMessageBatch, ReceiveMessage and DeleteMessageBatch
ROUND = 100


class BrokerBench:
    """A queue on the SQS-compatible server at ``endpoint`` (or a moto server of its own)."""

    service = "sqs"

    def __init__(self, endpoint: str | None = None) -> None:
        self._server: BrokerProcess | None = None
        self.endpoint = endpoint or ""
        self.queue = f"lambdad-bench-{uuid.uuid4().hex[:12]}"
        # moto accepts any account in the ARN's place; GetQueueUrl is told the owner.
        self.arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.queue}"
        self._client: Any = None
        self._url = ""

    async def __aenter__(self) -> BrokerBench:
        if not self.endpoint:
            self._server = await asyncio.to_thread(moto_server().start)
            self.endpoint = f"http://127.0.0.1:{self._server.port}"
        self._client = make_client(self.endpoint, REGION)
        created = await asyncio.to_thread(self._client.create_queue, QueueName=self.queue)
        self._url = created["QueueUrl"]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._client.delete_queue, QueueUrl=self._url)
        if self._server is not None:
            self._server.cleanup()

    def _publish_blocking(self, n: int, first: int = 0) -> None:
        for start in range(first, first + n, BATCH):
            entries = [
                {"Id": str(i), "MessageBody": body(i).decode()}
                for i in range(start, min(first + n, start + BATCH))
            ]
            self._client.send_message_batch(QueueUrl=self._url, Entries=entries)

    async def publish_many(self, n: int) -> None:
        """Send ``n`` messages, ten per SendMessageBatch."""
        await asyncio.to_thread(self._publish_blocking, n)

    def _consume_blocking(self, n: int) -> None:
        done = 0
        deadline = time.monotonic() + 120
        while done < n and time.monotonic() < deadline:
            messages = self._client.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=1
            ).get("Messages", [])
            if messages:
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                ]
                self._client.delete_message_batch(QueueUrl=self._url, Entries=entries)
                done += len(messages)
        if done < n:
            raise TimeoutError(f"only {done} of {n} messages arrived")

    async def raw_rate(self, n: int) -> float:
        """Events/s for sending ``n`` messages and receiving and deleting them, ten at a time, with
        boto3 alone (in rounds of ``ROUND``)."""
        started = time.perf_counter()
        for start in range(0, n, ROUND):
            count = min(ROUND, n - start)
            await asyncio.to_thread(self._publish_blocking, count, start)
            await asyncio.to_thread(self._consume_blocking, count)
        return n / (time.perf_counter() - started)

    async def source_rate(self, n: int, batch_size: int = 100) -> float:
        """Events/s for the same rounds with lambdad's source as the consumer."""
        window = 1 if batch_size > BATCH else 0
        spec = mapping_spec(self.arn, self.endpoint, batch_size, maximum_batching_window_in_seconds=window)
        source = SQS.source(spec)
        await source.open()
        try:
            started = time.perf_counter()
            for start in range(0, n, ROUND):
                count = min(ROUND, n - start)
                await asyncio.to_thread(self._publish_blocking, count, start)
                await drain(source, count, batch_size)
            return n / (time.perf_counter() - started)
        finally:
            await source.close()
