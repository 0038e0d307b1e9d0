"""What the queue-source end-to-end tests share: a function that reports each event it receives to the
shared Redis (over the host network) and fails on demand, and a lambdad server told where the brokers are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from tests.e2e.invoke_support import deploy_python, eventually, unique

# wait_state and delete_mapping: imported from here by the SQS tests.
from tests.e2e.mapping_support import delete_mapping, server_with_event_sources, wait_state  # noqa: F401
from tests.support import Server

REDIS_PORT = 6379

# Pushes {"event": EVENT, "bodies": [...]} onto the Redis list REPORT_KEY for every invocation (the
# bodies: SQS bodies, RabbitMQ data decoded, or the MQTT event itself), then fails as a body asks:
# one containing "fail-always" raises; "fail-item" is reported as a batch item failure (SQS); "slow"
# makes it sleep 2 s first.
REPORTER = r"""
import base64, json, os, socket, time

def _rpush(key, value):
    parts = [b"RPUSH", key.encode(), value.encode()]
    message = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", int(os.environ["REDIS_PORT"])), timeout=5) as sock:
        sock.sendall(message)
        sock.recv(64)

def _bodies(event):
    if "Records" in event:
        return [(r["messageId"], r["body"]) for r in event["Records"]]
    if "rmqMessagesByQueue" in event:
        return [
            (str(i), base64.b64decode(m["data"]).decode())
            for messages in event["rmqMessagesByQueue"].values()
            for i, m in enumerate(messages)
        ]
    return [("0", json.dumps(event))]

def handler(event, context):
    bodies = _bodies(event)
    if any("slow" in body for _, body in bodies):
        time.sleep(2)
    _rpush(os.environ["REPORT_KEY"], json.dumps({"event": event, "bodies": [b for _, b in bodies]}))
    if any("fail-always" in body for _, body in bodies):
        raise RuntimeError("asked to fail")
    return {"batchItemFailures": [{"itemIdentifier": i} for i, body in bodies if "fail-item" in body]}
"""


def redis_client() -> redis.Redis:
    return redis.Redis(port=REDIS_PORT, socket_timeout=5, decode_responses=True)


def lambdad_with_sources(directory: Path, **endpoints: str) -> Iterator[Server]:
    """A running lambdad whose event sources include ``endpoints`` (service=url), stopped afterwards."""
    setting = ",".join(f"{service}={url}" for service, url in endpoints.items())
    with server_with_event_sources(directory, setting) as running:
        yield running


class Reporter:
    """A deployed REPORTER function and what it reported."""

    def __init__(self, server: Server) -> None:
        self.name = unique("q-fn")
        self.key = f"lambdad-test-report-{uuid.uuid4().hex[:12]}"
        deploy_python(
            server.client(),
            self.name,
            REPORTER,
            Tags={"lambdad:network": "host"},
            Environment={"Variables": {"REDIS_PORT": str(REDIS_PORT), "REPORT_KEY": self.key}},
        )
        # Warm: a cold start slower than a test queue's visibility timeout would see a message twice.
        server.client().invoke(FunctionName=self.name, Payload=b'{"warm": true}')
        self.remove()

    def invocations(self) -> list[dict[str, Any]]:
        return [json.loads(item) for item in redis_client().lrange(self.key, 0, -1)]

    def bodies(self) -> list[str]:
        return [body for invocation in self.invocations() for body in invocation["bodies"]]

    def wait_bodies(self, count: int, timeout: float = 30) -> list[str]:
        eventually(lambda: len(self.bodies()) >= count, timeout=timeout)
        return self.bodies()

    def remove(self) -> None:
        redis_client().delete(self.key)


def reporter_on(server: Server) -> Iterator[Reporter]:
    """A REPORTER function deployed on ``server``; its Redis list is removed afterwards (a fixture body)."""
    reporter = Reporter(server)
    yield reporter
    reporter.remove()
