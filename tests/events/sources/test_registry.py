"""The list of event sources, and the facts other layers keep about it."""

from __future__ import annotations

from lambdad.events.sources import SOURCE_KINDS, arn_service, kind_for
from lambdad.services.event_invoke_configs import EVENT_SOURCE_SERVICES


def test_every_source_kind_is_an_accepted_event_destination() -> None:
    # The services layer cannot ask the events layer which ARN services it serves, so it keeps its own
    # list (SQS is an AWS destination anyway); a new source kind must be added there too.
    assert set(SOURCE_KINDS) == EVENT_SOURCE_SERVICES | {"sqs"}


def test_each_kind_is_registered_under_its_own_service() -> None:
    for service, kind in SOURCE_KINDS.items():
        assert getattr(kind, "service", service) == service
        assert kind_for(f"arn:aws:{service}:us-east-1:000000000000:anything") is kind
    assert arn_service("not an arn") == ""
