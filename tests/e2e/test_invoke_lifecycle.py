"""Execution environments live as on AWS: reused while warm, multiplied under concurrency, replaced by an
update, reaped when idle (and the next invoke is a cold start)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.invoke_support import (
    deploy_python,
    eventually,
    health,
    invoke,
    report_fields,
    server_fixture,
    start_server,
    tail,
    unique,
    wait_updated,
)
from tests.support import Server, make_zip

server = server_fixture()

# Each environment gets its own id at init; invocations count up in a global and in a /tmp file.
STATEFUL = """
import os, time, uuid

ENVIRONMENT_ID = uuid.uuid4().hex
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    with open("/tmp/invocations", "a") as f:
        f.write("x")
    time.sleep(event.get("sleep", 0))
    return {
        "environment": ENVIRONMENT_ID,
        "count": COUNT,
        "tmp_count": len(open("/tmp/invocations").read()),
        "version_mark": VERSION_MARK,
        "setting": os.environ.get("SETTING"),
    }
"""


def stateful(mark: str) -> str:
    return STATEFUL + f"\nVERSION_MARK = {mark!r}\n"


def invoke_concurrently(client: Any, name: str, events: list[dict[str, Any]]) -> list[Any]:
    """Invoke once per event, all at the same time; the answers (payloads or exceptions) in order."""
    answers: list[Any] = [None] * len(events)

    def run(index: int) -> None:
        try:
            answers[index] = invoke(client, name, events[index])[1]
        except Exception as error:  # reported to the test
            answers[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def test_a_warm_environment_keeps_globals_and_tmp_between_invokes(client: Any) -> None:
    name = unique("warm")
    deploy_python(client, name, stateful("v1"))

    first, first_payload = invoke(client, name, {}, LogType="Tail")
    second, second_payload = invoke(client, name, {}, LogType="Tail")
    _, third_payload = invoke(client, name, {})

    assert first_payload["environment"] == second_payload["environment"] == third_payload["environment"]
    assert [p["count"] for p in (first_payload, second_payload, third_payload)] == [1, 2, 3]
    assert [p["tmp_count"] for p in (first_payload, second_payload, third_payload)] == [1, 2, 3]
    assert "Init Duration" in report_fields(tail(first))
    assert "Init Duration" not in report_fields(tail(second))


def test_concurrent_invokes_get_separate_environments(server: Server, client: Any) -> None:
    name = unique("concurrent")
    deploy_python(client, name, stateful("v1"))
    before = health(server)["environments"]

    answers = invoke_concurrently(client, name, [{"sleep": 2}, {"sleep": 2}])

    assert all(isinstance(a, dict) for a in answers), answers
    assert answers[0]["environment"] != answers[1]["environment"]
    assert [a["count"] for a in answers] == [1, 1]
    assert health(server)["environments"] >= before + 2
    # Both stay warm: two more concurrent invokes reuse the same two environments.
    again = invoke_concurrently(client, name, [{"sleep": 1}, {"sleep": 1}])
    assert {a["environment"] for a in again} == {a["environment"] for a in answers}
    assert sorted(a["count"] for a in again) == [2, 2]


def test_updating_the_code_replaces_the_environment(client: Any) -> None:
    name = unique("code-update")
    deploy_python(client, name, stateful("v1"))
    _, before = invoke(client, name, {})
    invoke(client, name, {})

    client.update_function_code(FunctionName=name, ZipFile=make_zip({"handler.py": stateful("v2")}))
    wait_updated(client, name)
    response, after = invoke(client, name, {}, LogType="Tail")

    assert after["version_mark"] == "v2"
    assert after["environment"] != before["environment"]
    assert after["count"] == 1
    assert after["tmp_count"] == 1
    assert "Init Duration" in report_fields(tail(response))


def test_updating_the_configuration_replaces_the_environment(client: Any) -> None:
    name = unique("config-update")
    deploy_python(client, name, stateful("v1"), Environment={"Variables": {"SETTING": "old"}})
    _, before = invoke(client, name, {})

    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"SETTING": "new"}})
    wait_updated(client, name)
    _, after = invoke(client, name, {})

    assert before["setting"] == "old"
    assert after["setting"] == "new"
    assert after["environment"] != before["environment"]
    assert after["count"] == 1


def test_updating_memory_size_is_visible_in_the_next_invoke(client: Any) -> None:
    name = unique("memory-update")
    source = "def handler(event, context):\n    return context.memory_limit_in_mb\n"
    deploy_python(client, name, source)
    assert invoke(client, name, {})[1] == "128"

    client.update_function_configuration(FunctionName=name, MemorySize=256)
    wait_updated(client, name)
    response, payload = invoke(client, name, {}, LogType="Tail")

    assert payload == "256"
    assert report_fields(tail(response))["Memory Size"] == "256 MB"


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that removes environments idle for more than a second."""
    running = start_server(tmp_path_factory.mktemp("idle"), "--idle-timeout", "1")
    yield running
    running.stop(timeout=60)


def test_idle_environments_are_reaped_and_the_next_invoke_is_a_cold_start(idle_server: Server) -> None:
    client = idle_server.client()
    name = unique("idle")
    deploy_python(client, name, stateful("v1"))

    first, first_payload = invoke(client, name, {}, LogType="Tail")
    assert health(idle_server)["environments"] >= 1
    eventually(lambda: health(idle_server)["environments"] == 0, timeout=30)
    second, second_payload = invoke(client, name, {}, LogType="Tail")

    assert "Init Duration" in report_fields(tail(first))
    assert "Init Duration" in report_fields(tail(second))
    assert second_payload["environment"] != first_payload["environment"]
    assert second_payload["count"] == 1
    assert second_payload["tmp_count"] == 1


def test_an_environment_in_use_is_not_reaped(idle_server: Server) -> None:
    client = idle_server.client()
    name = unique("busy")
    deploy_python(client, name, stateful("v1"))

    _, payload = invoke(client, name, {"sleep": 3})  # three times the idle timeout, busy throughout

    assert payload["count"] == 1
