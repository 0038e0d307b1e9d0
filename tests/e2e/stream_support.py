"""What the stream source e2e tests share: a collector the functions report their events to (an HTTP
server in the test process, reached over the host network) and the collecting function."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.e2e.invoke_support import deploy_python, unique
from tests.support import Server

# The function posts each event to COLLECT_URL and learns how often the collector has seen each record
# (by a key the test chooses: COLLECT_ID_PATH names it inside a record); it then fails as the record's
# payload asks: {"fail": "always"} raises, {"fail": "once"} is reported as a batch item failure the first
# time it is seen.
COLLECTING_FUNCTION = r"""
import base64, json, os, urllib.request

def _payload(record):
    if "kinesis" in record:
        return json.loads(base64.b64decode(record["kinesis"]["data"]))
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    return {"fail": image.get("fail", {}).get("S")}

def _item_id(record):
    if "kinesis" in record:
        return record["kinesis"]["sequenceNumber"]
    return record["dynamodb"]["SequenceNumber"]

def handler(event, context):
    body = json.dumps(event).encode()
    request = urllib.request.Request(os.environ["COLLECT_URL"], data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        seen = json.loads(response.read())
    failures = []
    for record in event["Records"]:
        wish = _payload(record).get("fail")
        if wish == "always":
            raise RuntimeError("poison " + _item_id(record))
        if wish == "once" and seen[_item_id(record)] == 1:
            failures.append({"itemIdentifier": _item_id(record)})
    return {"batchItemFailures": failures}
"""


class Collector:
    """Events functions posted, by path (one path per function), and how often each record was seen."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._seen: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with collector._lock:
                    collector.events[self.path.strip("/")].append(event)
                    counts = {}
                    for record in event["Records"]:
                        item = item_id(record)
                        collector._seen[f"{self.path}:{item}"] += 1
                        counts[item] = collector._seen[f"{self.path}:{item}"]
                body = json.dumps(counts).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, function: str) -> str:
        return f"http://127.0.0.1:{self.port}/{function}"

    def records(self, function: str) -> list[dict[str, Any]]:
        with self._lock:
            return [record for event in self.events[function] for record in event["Records"]]

    def batches(self, function: str) -> list[list[dict[str, Any]]]:
        with self._lock:
            return [event["Records"] for event in self.events[function]]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def item_id(record: dict[str, Any]) -> str:
    """The sequence number a stream record is known by (Kinesis- or DynamoDB-shaped)."""
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["dynamodb"]["SequenceNumber"])


@contextmanager
def collector() -> Iterator[Collector]:
    running = Collector()
    try:
        yield running
    finally:
        running.close()


def deploy_collecting_function(server: Server, collect: Collector, prefix: str) -> str:
    """A new COLLECTING_FUNCTION on ``server`` reporting to ``collect`` (over the host network); its name."""
    name = unique(prefix)
    deploy_python(
        server.client(),
        name,
        COLLECTING_FUNCTION,
        Tags={"lambdad:network": "host"},
        Environment={"Variables": {"COLLECT_URL": collect.url(name)}},
    )
    return name
