"""How long a source holds a failed message before giving it back, for brokers that redeliver at once
(RabbitMQ's requeue, MQTT's resend on reconnect): without a pause a failing message would spin through
all its attempts in milliseconds."""

from __future__ import annotations

from lambdad.events.backoff import doubling

# 0.1 s after the first delivery, doubling with each delivery, at most 5 s.
FIRST, LONGEST = 0.1, 5.0


def release_delay(delivery_count: int) -> float:
    """The pause before releasing a message delivered ``delivery_count`` times."""
    return doubling(delivery_count, FIRST, LONGEST)
