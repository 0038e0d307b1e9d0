"""Event sources by ARN service; each module adapts one broker's client library (see ``base``)."""

from __future__ import annotations

from lambdad.events.sources.base import (
    NumberAttribute,
    Source,
    SourceKind,
    SourceMessage,
    SourceSpec,
    SourceUnavailable,
)
from lambdad.events.sources.mqtt import MQTT
from lambdad.events.sources.nats_jetstream import NatsJetStreamKind
from lambdad.events.sources.postgresql import PostgresqlKind
from lambdad.events.sources.rabbitmq import RABBITMQ
from lambdad.events.sources.sqs import SQS

# Filled by each source module's line below (explicit, so the list of sources is read here).
SOURCE_KINDS: dict[str, SourceKind] = {}
SOURCE_KINDS[MQTT.service] = MQTT
SOURCE_KINDS["nats"] = NatsJetStreamKind()
SOURCE_KINDS["postgresql"] = PostgresqlKind()
SOURCE_KINDS[RABBITMQ.service] = RABBITMQ
SOURCE_KINDS[SQS.service] = SQS

from lambdad.events.sources.redis_streams import RedisStreamsKind  # noqa: E402

SOURCE_KINDS["redis"] = RedisStreamsKind()


def arn_service(arn: str) -> str:
    """The service part of an ARN (``arn:aws:<service>:region:account:resource``), or ''."""
    parts = arn.split(":", 5)
    return parts[2] if len(parts) == 6 and parts[0] == "arn" else ""


def kind_for(arn: str) -> SourceKind | None:
    """The source kind serving ``arn``, or None when lambdad has no source for its service."""
    return SOURCE_KINDS.get(arn_service(arn))


__all__ = [
    "SOURCE_KINDS",
    "NumberAttribute",
    "Source",
    "SourceKind",
    "SourceMessage",
    "SourceSpec",
    "SourceUnavailable",
    "arn_service",
    "kind_for",
]
