"""The contract between an event source mapping's poller and the broker or database it reads.

A *source kind* (one per ARN service: ``mq``, ``sqs``, ``nats``, ``redis``, ``mqtt``, ``postgresql``)
validates a mapping's parameters, opens a *source* for a mapping, and publishes to one of its queues
(destinations and dead-letter queues). A *source* receives messages, shapes a batch into the event AWS
sends for that kind, and acknowledges or releases each message. The poller (``events.mappings``) owns
everything else: batching windows, filters, invoking, partial batch failures, bisecting, retries and the
on-failure destination, so each source stays a thin adapter over its client library.

A kind whose broker keeps state for a mapping (a durable consumer, a capture trigger) may also have
``async def remove(self, spec: SourceSpec) -> None``, which drops it; the supervisor calls it, best
effort, when the mapping is deleted.

Delivery is at least once: a message is acknowledged only after the function succeeded for it, it was
filtered out, or its failure record reached the on-failure destination. Whatever is neither acknowledged
nor released when the server dies must come back after a restart (the broker's own redelivery:
unacked AMQP deliveries, SQS visibility timeouts, JetStream ack waits, Redis pending entries...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SourceSpec:
    """What a source needs to know of its mapping."""

    uuid: str
    event_source_arn: str
    # The broker or database URL for this ARN's service, from Settings.event_sources.
    endpoint: str
    region: str
    account: str
    batch_size: int
    # TRIM_HORIZON | LATEST | AT_TIMESTAMP for stream sources; None for queues.
    starting_position: str | None = None
    starting_position_timestamp: float | None = None
    # Amazon MQ's Queues and Kafka-style Topics, as the mapping names them.
    queues: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    # The mapping's MaximumBatchingWindowInSeconds (SQS allows BatchSize above 10 only with a window).
    maximum_batching_window_in_seconds: int = 0
    # The mapping's SourceAccessConfigurations as (Type, URI) pairs, e.g. ("VIRTUAL_HOST", "/orders").
    source_access_configurations: tuple[tuple[str, str], ...] = ()
    # The execution role of the function the mapping invokes, where known (Kinesis-shaped records'
    # ``invokeIdentityArn``); None when the function could not be read.
    role: str | None = None

    @property
    def invoke_identity_arn(self) -> str:
        """A Kinesis-shaped record's ``invokeIdentityArn``: the function's role as on AWS, or a
        placeholder role of lambdad's when it is unknown."""
        return self.role or f"arn:aws:iam::{self.account}:role/lambdad-event-source-mapping"


@dataclass(frozen=True)
class SourceMessage:
    """One message as a source delivered it."""

    # The identifier AWS's partial batch response names it by (``itemIdentifier``): SQS's messageId,
    # a stream's sequence number...
    item_id: str
    # The message as it appears inside the event the function receives (AWS's shape for the kind).
    record: dict[str, Any]
    # What FilterCriteria patterns are matched against: the record, with its body or data decoded as
    # JSON where it is JSON (AWS filters ``body`` for SQS, ``data`` for streams, ``dynamodb`` for
    # DynamoDB-style records).
    filter_view: dict[str, Any]
    # Times the broker has delivered it, this delivery included (1 = first), where the broker counts.
    delivery_count: int = 1
    # When the broker accepted it (epoch seconds): the mapping's lag and MaximumRecordAgeInSeconds.
    sent_at: float = 0.0
    # Payload size in bytes (a batch's event stays under the 6 MB invoke limit).
    size: int = 0
    # Whatever the source needs to acknowledge or release it (delivery tag, receipt handle, msg...).
    token: Any = field(default=None, compare=False, repr=False)


class Source(Protocol):
    """One mapping's connection to its broker or database."""

    # Streams (ordered: a failed record blocks the ones after it until retried or discarded) versus
    # queues (each message retried on its own).
    ordered: bool

    async def open(self) -> None:
        """Connect and create or attach the durable consumer (at the starting position the first
        time). Raises ``SourceUnavailable`` when the broker cannot be reached."""
        ...

    async def receive(self, max_messages: int, max_wait: float) -> list[SourceMessage]:
        """Up to ``max_messages`` messages, waiting at most ``max_wait`` seconds for the first one."""
        ...

    async def ack(self, messages: Sequence[SourceMessage]) -> None:
        """Done with these for good: never deliver them again."""
        ...

    async def release(self, messages: Sequence[SourceMessage]) -> None:
        """Not done: deliver these again later (their delivery count grows)."""
        ...

    def event(self, messages: Sequence[SourceMessage]) -> dict[str, Any]:
        """The event one invocation receives for a batch, in AWS's shape for this kind."""
        ...

    async def lag(self) -> int | None:
        """Messages waiting in the broker for this mapping, where the broker tells."""
        ...

    async def close(self) -> None:
        """Disconnect; unacknowledged messages go back to the broker."""
        ...


class SourceKind(Protocol):
    """Everything lambdad knows of one ARN service's brokers."""

    # The ARN's service part this kind serves (``arn:aws:<service>:...``).
    service: str

    def validate(self, spec: SourceSpec) -> None:
        """Refuse a mapping this kind cannot serve (``InvalidParameterValueException`` with AWS's
        wording where AWS has one), before anything is stored."""
        ...

    def source(self, spec: SourceSpec) -> Source:
        """A source for one mapping (not yet opened)."""
        ...

    async def publish(
        self, arn: str, endpoint: str, body: bytes, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Send one message to the queue, stream or topic ``arn`` names (destinations and dead-letter
        queues), with string ``attributes`` where the broker carries them (SQS message attributes, AMQP
        headers...: a dead-letter message's RequestID, ErrorCode and ErrorMessage). Raises
        ``SourceUnavailable`` when the broker cannot be reached."""
        ...


class NumberAttribute(str):
    """A message attribute whose value is a number: SQS sends it with DataType ``Number`` (as AWS sends a
    dead-letter message's ErrorCode); brokers without attribute types send it as the text it is."""


class SourceUnavailable(Exception):
    """The broker or database cannot be reached now; the poller retries with backoff and says why."""
