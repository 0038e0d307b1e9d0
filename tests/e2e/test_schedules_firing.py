"""Schedules firing real functions: on time, with Input (and its context attributes) as the event,
never when DISABLED, once for at(), and on time again after lambdad is killed and restarted, without
firing any slot twice.

A lambdad-only setting shortens a rate's minute (LAMBDAD_SCHEDULE_MINUTE_SECONDS=2), so that
``rate(1 minute)`` fires every 2 s of real time; every other rule is AWS's.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.invoke_support import cgroup_dirs, deploy_python, eventually, log_group_dir, unique
from tests.support import CREDENTIALS, LAMBDAD, Server

pytestmark = pytest.mark.e2e
MINUTE = 2.0  # seconds of real time per rate minute in these tests
ENV = {"LAMBDAD_SCHEDULE_MINUTE_SECONDS": str(MINUTE), "LAMBDAD_SCHEDULE_TICK_SECONDS": "0.2"}
ROLE = "arn:aws:iam::000000000000:role/scheduler-role"
RECORDER = """
import itertools
import json
def handler(event, context):
    print("EVENT " + json.dumps(event))
    return event
"""
INPUT = json.dumps(
    {
        "tag": "TAG",
        "schedule": "<aws.scheduler.schedule-arn>",
        "slot": "<aws.scheduler.scheduled-time>",
        "attempt": "<aws.scheduler.attempt-number>",
    }
)


def start(directory: Path, server: Server | None = None) -> Server:
    with pytest.MonkeyPatch.context() as env:
        for key, value in ENV.items():
            env.setenv(key, value)
        server = server or Server(directory / "data")
        return server.start(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(tmp_path_factory.mktemp("lambdad"))
    yield running
    running.stop(timeout=60)


@pytest.fixture(scope="module")
def recorder(server: Server) -> str:
    name = unique("recorder")
    deploy_python(server.client(), name, RECORDER)
    return name


def scheduler(server: Server) -> Any:
    return boto3.client(
        "scheduler",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **CREDENTIALS,
    )


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


def received(server: Server, function: str, tag: str) -> list[tuple[float, dict[str, Any]]]:
    """(when it was logged, the event) for each event with ``tag`` the function printed, in order."""
    directory = log_group_dir(server, function)
    found = []
    if directory.exists():
        for path in directory.iterdir():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line) if line else {}
                message = str(record.get("message", ""))
                if message.startswith("EVENT "):
                    event = json.loads(message[len("EVENT ") :])
                    if event.get("tag") == tag:
                        found.append((record["timestamp"] / 1000, event))
    return sorted(found, key=lambda pair: pair[0])


def slot_time(event: dict[str, Any]) -> float:
    return datetime.strptime(event["slot"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def create(client: Any, name: str, function: str, tag: str, expression: str, **params: Any) -> str:
    return str(
        client.create_schedule(
            Name=name,
            ScheduleExpression=expression,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": function_arn(function), "RoleArn": ROLE, "Input": INPUT.replace("TAG", tag)},
            **params,
        )["ScheduleArn"]
    )


def status(server: Server, name: str) -> dict[str, Any]:
    schedules = server.own("/_lambdad/schedules", timeout=5)["Schedules"]
    return next(s for s in schedules if s["Name"] == name)


def test_a_rate_schedule_fires_the_function_on_time_with_its_input(server: Server, recorder: str) -> None:
    client, name, tag = scheduler(server), unique("every"), unique("tag")
    arn = create(client, name, recorder, tag, "rate(1 minute)")
    events = eventually(lambda: (found := received(server, recorder, tag)) and len(found) >= 4 and found, 30)
    for _, event in events:
        assert event == {"tag": tag, "schedule": arn, "slot": event["slot"], "attempt": "1"}
    slots = [slot_time(event) for _, event in events]
    assert [b - a for a, b in itertools.pairwise(slots)] == [MINUTE] * (len(slots) - 1)
    # Warm invocations run before the next slot (AWS: within the minute of their slot).
    lateness = [logged - slot_time(event) for logged, event in events[1:]]
    assert all(0 <= late < MINUTE for late in lateness), lateness
    seen = status(server, name)
    assert seen["LastResult"] == "Invoked (Event)"
    assert seen["State"] == "ENABLED" and seen["NextFireTime"] > seen["LastScheduledTime"]

    client.delete_schedule(Name=name)
    count = len(received(server, recorder, tag))
    time.sleep(2 * MINUTE)
    assert len(received(server, recorder, tag)) <= count + 1  # at most one already handed over


def test_a_disabled_schedule_does_not_fire_until_enabled(server: Server, recorder: str) -> None:
    client, name, tag = scheduler(server), unique("off"), unique("tag")
    create(client, name, recorder, tag, "rate(1 minute)", State="DISABLED")
    time.sleep(2.5 * MINUTE)
    assert received(server, recorder, tag) == []
    assert status(server, name)["NextFireTime"] is None
    client.update_schedule(
        Name=name,
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn(recorder), "RoleArn": ROLE, "Input": INPUT.replace("TAG", tag)},
        State="ENABLED",
    )
    eventually(lambda: received(server, recorder, tag), 15)
    client.delete_schedule(Name=name)


def test_an_at_schedule_fires_once_and_deletes_itself_when_asked(server: Server, recorder: str) -> None:
    client, tag = scheduler(server), unique("tag")
    moment = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    deleting, keeping = unique("once-delete"), unique("once-keep")
    create(client, deleting, recorder, tag, f"at({moment})", ActionAfterCompletion="DELETE")
    create(client, keeping, recorder, tag, f"at({moment})")
    events = eventually(lambda: (found := received(server, recorder, tag)) and len(found) >= 2 and found, 20)
    assert {event["slot"] for _, event in events} == {moment + "Z"}
    eventually(lambda: deleting not in [s["Name"] for s in client.list_schedules()["Schedules"]], 10)
    time.sleep(1.5)
    assert len(received(server, recorder, tag)) == 2
    assert client.get_schedule(Name=keeping)["ScheduleExpression"] == f"at({moment})"
    assert status(server, keeping)["NextFireTime"] is None
    client.delete_schedule(Name=keeping)


def test_a_missing_target_is_retried_and_reported(server: Server) -> None:
    client, name = scheduler(server), unique("missing")
    client.create_schedule(
        Name=name,
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": function_arn(unique("absent")),
            "RoleArn": ROLE,
            "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60},
        },
    )
    seen = eventually(lambda: (found := status(server, name))["LastResult"] and found, 10)
    assert seen["LastResult"].startswith("ResourceNotFoundException: Function not found: ")
    log = eventually(
        lambda: (text := server.log_path.read_text()) and "no DeadLetterConfig" in text and text, 15
    )
    assert "retry 1" in log
    client.delete_schedule(Name=name)


def test_schedules_fire_on_time_after_a_kill_and_never_twice_for_one_slot(tmp_path: Path) -> None:
    server = start(tmp_path)
    function = unique("survivor")
    try:
        deploy_python(server.client(), function, RECORDER)
        client, name, tag = scheduler(server), unique("steady"), unique("tag")
        create(client, name, function, tag, "rate(1 minute)")
        eventually(lambda: (found := received(server, function, tag)) and len(found) >= 3, 30)
        server.stop(signal.SIGKILL)
        killed_at = time.time()
        time.sleep(2.5 * MINUTE)  # slots pass while nothing runs
        start(tmp_path, server)
        restarted_at = time.time()
        events = eventually(
            lambda: (
                (found := received(server, function, tag))
                and len([e for t, e in found if t > restarted_at]) >= 4
                and found
            ),
            40,
        )
        slots = [slot_time(event) for _, event in events]
        assert len(slots) == len(set(slots)), "a slot fired twice"
        assert all((slot - slots[0]) % MINUTE == 0 for slot in slots), "slots left the rate's grid"
        after = [(logged, slot_time(event)) for logged, event in events if logged > restarted_at]
        # Missed slots are not replayed in a burst: only the latest one fires, then the rate goes on.
        assert len([slot for _, slot in after if slot < restarted_at]) <= 1
        assert all(0 <= logged - slot < MINUTE for logged, slot in after[2:]), after
        assert after[0][1] >= killed_at - MINUTE
    finally:
        if server.process and server.process.poll() is None:
            server.stop(timeout=60)
        for directory in sorted(cgroup_dirs(function), key=lambda p: len(p.parts), reverse=True):
            for child in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if child.is_dir():
                    child.rmdir()
            directory.rmdir()


def test_lambdad_schedules_shows_state_fire_times_and_results(server: Server, recorder: str) -> None:
    client, name, tag = scheduler(server), unique("shown"), unique("tag")
    create(client, name, recorder, tag, "rate(1 minute)")
    eventually(lambda: received(server, recorder, tag), 20)
    command = [str(LAMBDAD), "schedules", "--endpoint", server.endpoint]
    shown = subprocess.run(
        command, capture_output=True, text=True, timeout=30, env=server.cli_env(COLUMNS="250"), check=True
    ).stdout
    row = next(line for line in shown.splitlines() if name in line)
    assert "ENABLED" in row and "rate(1 minute)" in row and recorder in row and "Invoked (Event)" in row
    as_json = subprocess.run(
        [*command, "--json"], env=server.cli_env(), capture_output=True, text=True, timeout=30, check=True
    )
    [listed] = [s for s in json.loads(as_json.stdout) if s["Name"] == name]
    assert listed["NextFireTime"] > listed["LastFireTime"]
    client.delete_schedule(Name=name)
