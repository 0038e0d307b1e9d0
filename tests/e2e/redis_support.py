"""A private redis-server for tests that restart their broker, and a function that reports what it
received to Redis (over the host network) and fails on demand."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support import Server, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# The function records each invocation's batch on the list COLLECT_KEY (as JSON: the entries' data and
# ids) and fails as each entry's data asks: {"fail": "always"} raises, {"fail": "item"} is reported as a
# batch item failure.
COLLECTOR = r"""
import base64, json, os, socket

def _call(*parts):
    message = b"*%d\r\n" % len(parts)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        message += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", int(os.environ["REDIS_PORT"])), timeout=5) as sock:
        sock.sendall(message)
        reply = sock.recv(1024)
    return int(reply[1:].split(b"\r\n")[0]) if reply.startswith(b":") else reply

def handler(event, context):
    records = event["Records"]
    seen = []
    for record in records:
        data = base64.b64decode(record["redis"]["data"]).decode()
        identity = record["invokeIdentityArn"]
        seen.append({"id": record["redis"]["sequenceNumber"], "data": data, "role": identity})
    _call("RPUSH", os.environ["COLLECT_KEY"], json.dumps(seen))
    failures = []
    for record, item in zip(records, seen):
        try:
            wish = json.loads(item["data"]).get("fail")
        except (ValueError, AttributeError):
            wish = None
        if wish == "always":
            raise RuntimeError("poison " + item["id"])
        if wish == "item":
            failures.append({"itemIdentifier": item["id"]})
    return {"batchItemFailures": failures}
"""


@dataclass
class PrivateRedis:
    """A redis-server of the test's own (append-only file, so a restart keeps its streams)."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)


@contextmanager
def private_redis(directory: Path) -> Iterator[PrivateRedis]:
    """A running private redis-server, stopped afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    server = PrivateRedis(directory, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# tests.support.Server takes extra environment variables itself (``env=``); the old name stays for the
# tests that import it.
ServerWithEnv = Server
