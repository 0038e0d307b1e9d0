"""What every event source mapping end-to-end test shares: a lambdad server told where the brokers are,
and waiting for a mapping's state or its deletion."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.invoke_support import eventually, start_server
from tests.support import Server


@contextmanager
def server_with_event_sources(directory: Path, event_sources: str) -> Iterator[Server]:
    """A running lambdad server reading ``LAMBDAD_EVENT_SOURCES=event_sources`` (``service=url,...``),
    stopped afterwards unless the test stopped it. The host network is allowed: the tests' functions
    report what they received to collectors on the host's loopback."""
    server = start_server(directory, "--allow-host-network", env={"LAMBDAD_EVENT_SOURCES": event_sources})
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop(timeout=60)


def wait_state(client: Any, mapping_uuid: str, state: str, timeout: float = 20) -> dict[str, Any]:
    return eventually(
        lambda: (m := client.get_event_source_mapping(UUID=mapping_uuid))["State"] == state and m,
        timeout=timeout,
    )


def gone(client: Any, mapping_uuid: str) -> bool:
    """Whether the mapping no longer exists."""
    try:
        client.get_event_source_mapping(UUID=mapping_uuid)
    except client.exceptions.ResourceNotFoundException:
        return True
    return False


def delete_mapping(client: Any, mapping_uuid: str) -> None:
    """Delete a mapping and wait until it is gone (its poller stopped)."""
    client.delete_event_source_mapping(UUID=mapping_uuid)
    eventually(lambda: gone(client, mapping_uuid), timeout=20)
