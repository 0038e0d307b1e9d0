"""A function's logs from every node, read through any node (``lambdad logs NAME --endpoint``)."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.cluster_support import cluster
from tests.e2e.invoke_support import ACTIVE_WAIT, deploy_python, unique
from tests.support import LAMBDAD

pytestmark = pytest.mark.timeout(240)

SLOW = """
import time
def handler(event, context):
    print("ran", event["n"])
    time.sleep(1.5)
    return event["n"]
"""


def test_logs_written_on_every_node_are_read_through_any_node(tmp_path: Path) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=2) as c:
        name = unique("logged")
        deploy_python(c["n1"].client(), name, SLOW)
        c["n2"].client().get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
        # At once through each node: each runs it in an environment of its own (neither has an idle one).
        with ThreadPoolExecutor(2) as pool:
            ran = list(
                pool.map(
                    lambda n: (
                        c[f"n{n}"].client().invoke(FunctionName=name, Payload=json.dumps({"n": n}).encode())
                    ),
                    (1, 2),
                )
            )
        assert [r["StatusCode"] for r in ran] == [200, 200]
        group = f"/aws/lambda/{name}"
        written = {node: list((c[node].data_dir / "logs").glob("*/*")) for node in ("n1", "n2")}
        assert written["n1"] and written["n2"], written  # both nodes ran it: their disks have its streams

        deadline = time.monotonic() + 10
        while True:
            query = urlencode({"group": group})
            events = c["n1"].own(f"/_lambdad/logs?{query}")["Events"]
            messages = [event["message"] for event in events]
            if ("ran 1" in messages and "ran 2" in messages) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "ran 1" in messages and "ran 2" in messages, messages
        assert len({event["logStreamName"] for event in events}) == 2
        assert sum(message.startswith("START RequestId") for message in messages) == 2
        assert [event["timestamp"] for event in events] == sorted(event["timestamp"] for event in events)

        printed = subprocess.run(
            [str(LAMBDAD), "logs", name, "--endpoint", c["n2"].endpoint],
            env=c["n2"].cli_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert printed.returncode == 0, printed.stderr
        assert "ran 1" in printed.stdout and "ran 2" in printed.stdout
