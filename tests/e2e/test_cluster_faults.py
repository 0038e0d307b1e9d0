"""A cluster rides out its engines' faults: PostgreSQL unavailable for 10 s, NATS restarted, a node killed.

During a database outage every node answers API calls with AWS-style errors, quickly, and warm invokes
keep working from memory; afterwards everything resumes and every Event invocation accepted before the
outage runs. A NATS restart leaves every node live in every view, and change notices flow again. A killed
node restarts, rejoins, and runs functions again.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.brokers import BrokerProcess, private_nats
from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import deploy_python, eventually, invoke, log_messages, unique
from tests.support import ROLE, make_zip

pytestmark = pytest.mark.timeout(300)

# Says which node ran it and what it saw; an event with "sleep" holds its environment that long, and an
# event with "mark" prints it, so that a test can find every Event invocation in the nodes' logs.
REPORTER = """
import os, time

def handler(event, context):
    event = event or {}
    time.sleep(event.get("sleep", 0))
    if "mark" in event:
        print("ran", event["mark"])
    return {"colour": os.environ.get("COLOUR", "none"), "request": context.aws_request_id}
"""

OUTAGE = 10.0  # seconds the database is away
CALL_BOUND = 10.0  # no API call during the outage may take longer (a hang would)
NODES = ("n1", "n2")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[BrokerProcess]:
    home = tmp_path / "nats"
    home.mkdir()
    server = private_nats(home).start()
    try:
        yield server
    finally:
        server.cleanup()


def _refused_quickly(operation: Any, **params: Any) -> ClientError:
    """``operation(**params)`` fails with an AWS-style error within CALL_BOUND seconds; the error."""
    started = time.monotonic()
    try:
        operation(**params)
    except ClientError as error:
        elapsed = time.monotonic() - started
        assert elapsed < CALL_BOUND, f"the error took {elapsed:.1f} s"
        return error
    raise AssertionError("the call succeeded while the database was unavailable")


def _marks_run(c: Cluster, name: str) -> list[str]:
    """Every mark printed by ``name``'s invocations on any node (one entry per run)."""
    return [
        message.split()[1]
        for node in c.nodes.values()
        for message in log_messages(node, name)
        if message.startswith("ran ")
    ]


def test_postgresql_unavailable_for_10_s_answers_errors_keeps_warm_invokes_and_loses_nothing(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=len(NODES)) as c:
        n1 = c["n1"].client()
        name = unique("pg-outage")
        deploy_python(n1, name, REPORTER)
        for node in NODES:  # warm on every node: known functions keep running from memory
            assert invoke(c[node].client(), name, {})[0]["StatusCode"] == 200
        url_id = n1.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"].split("//")[
            1
        ]
        url_id = url_id.split(".")[0]
        n1.add_permission(
            FunctionName=name,
            StatementId="url",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        )
        for node in NODES:
            assert _call_url(c[node].endpoint, url_id).status_code == 200
        # A URL no node served yet: nothing about it is in memory, so it cannot be served.
        other = unique("pg-unseen")
        deploy_python(n1, other, REPORTER)
        unseen = n1.create_function_url_config(FunctionName=other, AuthType="NONE")["FunctionUrl"]
        unseen_id = unseen.split("//")[1].split(".")[0]
        # Event invocations accepted before the outage; each takes a while, so some are still queued
        # or running when the database goes.
        marks = [uuid.uuid4().hex[:12] for _ in range(30)]
        for mark in marks:
            n1.invoke(
                FunctionName=name, InvocationType="Event", Payload=json.dumps({"mark": mark, "sleep": 0.3})
            )

        errors: list[ClientError] = []
        warm_invokes = 0
        url_answers: set[int] = set()
        unseen_answers: set[int] = set()
        with c.database_outage():
            started = time.monotonic()
            while time.monotonic() - started < OUTAGE:
                for node in NODES:
                    client = c[node].client()
                    errors += [
                        _refused_quickly(client.get_function, FunctionName=name),
                        _refused_quickly(client.list_functions),
                        _refused_quickly(client.create_function, **_new_function(unique("during"))),
                        _refused_quickly(client.invoke, FunctionName=name, InvocationType="Event"),
                    ]
                    response, answer = invoke(client, name, {})
                    assert response["StatusCode"] == 200 and "FunctionError" not in response, answer
                    warm_invokes += 1
                    # A function URL checks its permission in the database: an HTTP error, at once.
                    url_answers.add(_call_url(c[node].endpoint, url_id).status_code)
                    unseen_answers.add(_call_url(c[node].endpoint, unseen_id).status_code)
                time.sleep(0.5)
        print(f"during the outage: {len(errors)} API errors, {warm_invokes} warm invokes, URLs {url_answers}")
        assert url_answers == {200}, url_answers  # the URL and its permission are cached
        assert unseen_answers == {502}, unseen_answers  # AWS's answer when no response can be made
        for error in errors:
            assert error.response["Error"]["Code"] == "ServiceException", error.response
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert "database is unavailable" in error.response["Error"]["Message"], error.response
            assert "Traceback" not in str(error.response)

        # Everything resumes: new functions, invokes through every node, and every Event invocation
        # accepted before the outage runs (at least once).
        back = time.monotonic()
        after = unique("pg-after")
        eventually(lambda: _created(n1, after), timeout=30)
        print(f"CreateFunction worked again {time.monotonic() - back:.1f} s after the outage")
        n1.get_waiter("function_active_v2").wait(FunctionName=after, WaiterConfig={"Delay": 0.2})
        for node in NODES:
            assert invoke(c[node].client(), after, {})[0]["StatusCode"] == 200
            assert invoke(c[node].client(), name, {})[0]["StatusCode"] == 200
            assert _call_url(c[node].endpoint, url_id).status_code == 200
        # Well within the 60 s lease of a claimed event: none waited for its lease to run out.
        eventually(lambda: set(marks) <= set(_marks_run(c, name)), timeout=45, interval=0.5)
        print(f"every Event invocation had run {time.monotonic() - back:.1f} s after the outage")
        runs = _marks_run(c, name)
        print(
            f"Event invocations: {len(marks)} accepted before the outage, all ran; "
            f"{len(runs) - len(set(runs))} ran twice"
        )
        for node in c.nodes.values():
            assert "Traceback" not in node.log_path.read_text(errors="replace"), node.log_path


def _call_url(endpoint: str, url_id: str) -> httpx.Response:
    """GET a function URL by lambdad's path form, within CALL_BOUND seconds."""
    return httpx.get(f"{endpoint}/_lambdad/urls/{url_id}/", timeout=CALL_BOUND)


def _new_function(name: str) -> dict[str, Any]:
    """CreateFunction's parameters for a REPORTER function."""
    return {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip({"handler.py": REPORTER})},
    }


def _created(client: Any, name: str) -> bool:
    """CreateFunction worked (a node may need a moment to find the database back)."""
    try:
        client.create_function(**_new_function(name))
    except ClientError as error:
        if error.response["Error"]["Code"] == "ServiceException":
            return False
        raise
    return True


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _heard_since(c: Cluster, nodes: tuple[str, ...], since: str, states: set[str]) -> bool:
    """Whether every node of ``nodes`` sees a heartbeat of every node sent after ``since``; adds the
    states it sees to ``states``."""
    for observer in nodes:
        view = c.view(observer)
        states.update(n["State"] for n in view)
        heard = {n["NodeId"]: n["LastHeartbeat"] for n in view}
        if any(heard.get(node, "") <= since for node in nodes):
            return False
    return True


def _logs_through(c: Cluster, node: str, name: str) -> list[str]:
    """The messages of ``name``'s log group as node ``node`` reads them from the whole cluster."""
    query = urllib.parse.urlencode({"group": f"/aws/lambda/{name}"})
    return [event["message"] for event in c[node].own(f"/_lambdad/logs?{query}")["Events"]]


def _resumed_colour(client: Any, name: str, within: float = 15) -> str:
    """``_colour`` once the node's concurrency leases work again: a NATS that lost its files has no
    leases bucket until the nodes make it anew, and an invoke meanwhile is throttled (429), as AWS's
    clients retry."""
    deadline = time.monotonic() + within
    while True:
        try:
            return _colour(client, name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TooManyRequestsException" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _colour(client: Any, name: str) -> str:
    response, answer = invoke(client, name, {})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, answer
    return str(answer["colour"])


@pytest.mark.parametrize("keeps_its_files", [True, False], ids=["same-store", "store-lost"])
def test_nats_restarted_every_node_stays_and_comes_back_live_and_change_notices_flow_again(
    tmp_path: Path, nats_server: BrokerProcess, keeps_its_files: bool
) -> None:
    nodes = ("n1", "n2", "n3")
    nats_url = f"nats://127.0.0.1:{nats_server.port}"
    with cluster(tmp_path, "--spares", "0", nodes=len(nodes), nats_url=nats_url) as c:
        name = unique("nats-restart")
        deploy_python(c["n1"].client(), name, REPORTER, Environment={"Variables": {"COLOUR": "red"}})
        for node in nodes:
            assert _colour(c[node].client(), name) == "red"

        nats_server.stop()
        # Without NATS, PostgreSQL still holds everything: the API answers and functions run; and a node
        # that cannot hear the others does not declare them dead (their ages stand still), even past
        # the 10 s after which a silent node would be.
        away = time.monotonic()
        while time.monotonic() - away < 12:
            for node in nodes:
                client = c[node].client()
                assert client.get_function(FunctionName=name)["Configuration"]["State"] == "Active"
                assert _colour(client, name) == "red"
                states = {n["NodeId"]: n["State"] for n in c.view(node)}
                assert "dead" not in states.values(), (node, states)
            time.sleep(0.5)

        if not keeps_its_files:  # NATS holds nothing that cannot be rebuilt: the nodes make it anew
            shutil.rmtree(tmp_path / "nats")
            (tmp_path / "nats").mkdir()
        nats_server.start()  # on the same port
        back, restarted_at = time.monotonic(), _now_iso()
        # Heartbeats flow again: every view shows every node's heartbeat sent after the restart (the
        # states alone would read live for a moment even if they did not: ages restart at a reconnect),
        # and soon enough that no node turns suspect in any view meanwhile.
        seen: set[str] = set()
        eventually(lambda: _heard_since(c, nodes, restarted_at, seen), timeout=30, interval=0.2)
        assert seen == {"live"}, seen
        c.wait_states({node: "live" for node in nodes}, timeout=30)
        print(f"every node heard live by every node {time.monotonic() - back:.1f} s after NATS came back")

        # Change notices flow again: an update through n2 reaches the caches and warm environments of
        # n1 and n3 (which read the function again after the reconnect).
        for node in nodes:
            assert _colour(c[node].client(), name) == "red"
        c["n2"].client().update_function_configuration(
            FunctionName=name, Environment={"Variables": {"COLOUR": "blue"}}
        )
        for node in nodes:
            eventually(lambda node=node: _colour(c[node].client(), name) == "blue", timeout=15)

        # A function created after the restart runs on every node.
        after = unique("nats-after")
        deploy_python(c["n3"].client(), after, REPORTER)
        for node in nodes:
            assert _resumed_colour(c[node].client(), after) == "none"
        # Logs are shipped again (the stream made anew if NATS lost it): what n1 ran reads through n3.
        mark = uuid.uuid4().hex[:12]
        assert invoke(c["n1"].client(), after, {"mark": mark})[0]["StatusCode"] == 200
        eventually(lambda: f"ran {mark}" in _logs_through(c, "n3", after), timeout=15, interval=0.3)


def test_a_killed_node_restarts_rejoins_and_runs_functions_and_events_again(tmp_path: Path) -> None:
    with cluster(tmp_path, "--spares", "0", nodes=2) as c:
        n1, n2 = c["n1"].client(), c["n2"].client()
        name = unique("rejoin")
        deploy_python(n1, name, REPORTER)
        assert _colour(n2, name) == "none"  # warm on n2
        marks = [uuid.uuid4().hex[:12] for _ in range(20)]
        for mark in marks:
            n2.invoke(
                FunctionName=name, InvocationType="Event", Payload=json.dumps({"mark": mark, "sleep": 0.5})
            )
        c.kill("n2")  # whatever n2 claimed is held by a process that is gone
        c.wait_states({"n2": "dead"}, on="n1", timeout=20)
        c.restart("n2")
        c.wait_states({"n1": "live", "n2": "live"})
        n2 = c["n2"].client()
        assert _colour(n2, name) == "none"
        after = unique("rejoin-after")
        deploy_python(n2, after, REPORTER)
        assert _colour(n1, after) == "none" and _colour(n2, after) == "none"
        # Well within the 60 s lease: events the killed node held are released when it starts again.
        eventually(lambda: set(marks) <= set(_marks_run(c, name)), timeout=45, interval=0.5)
        runs = _marks_run(c, name)
        print(f"Event invocations: {len(marks)} accepted, all ran; {len(runs) - len(set(runs))} ran twice")
