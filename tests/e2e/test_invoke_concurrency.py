"""Concurrency limits as AWS applies them: reserved concurrency (0 throttles everything synchronous),
Put/Get/DeleteFunctionConcurrency, the account limit, and AWS's TooManyRequestsException reasons."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import deploy_python, invoke, server_fixture, start_server, unique
from tests.support import Server

server = server_fixture()

SLEEPER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return "done"
"""


def invoke_all_at_once(client: Any, name: str, count: int, sleep: float) -> list[Any]:
    """``count`` simultaneous invokes sleeping ``sleep`` s: each answer is "done" or the ClientError."""
    answers: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            answers[index] = invoke(client, name, {"sleep": sleep})[1]
        except ClientError as error:
            answers[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def throttled(answer: Any, reason: str) -> bool:
    return (
        isinstance(answer, ClientError)
        and answer.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        and answer.response["Error"]["Code"] == "TooManyRequestsException"
        and answer.response.get("Reason") == reason
    )


@pytest.fixture
def sleeper(client: Any) -> Iterator[str]:
    name = unique("sleeper")
    deploy_python(client, name, SLEEPER)
    yield name
    client.delete_function(FunctionName=name)  # gives its reservation back to the account


def test_reserved_concurrency_zero_throttles_sync_invokes_with_429(client: Any, sleeper: str) -> None:
    client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=0)

    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName=sleeper, Payload=b"{}")

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert error["Type"] == "User"


def test_a_throttled_invoke_says_rate_exceeded_as_aws_does(client: Any, sleeper: str) -> None:
    client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=0)

    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName=sleeper, Payload=b"{}")

    assert caught.value.response["Error"]["Message"] == "Rate Exceeded."


def test_reserved_concurrency_zero_still_accepts_event_invokes(client: Any, sleeper: str) -> None:
    client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=0)

    response, _ = invoke(client, sleeper, {}, InvocationType="Event")

    assert response["StatusCode"] == 202


def test_deleting_the_reservation_lifts_the_throttle(client: Any, sleeper: str) -> None:
    client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=0)
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke(FunctionName=sleeper, Payload=b"{}")

    client.delete_function_concurrency(FunctionName=sleeper)

    assert invoke(client, sleeper, {})[1] == "done"


def test_function_concurrency_round_trip(client: Any, sleeper: str) -> None:
    default = client.get_function_concurrency(FunctionName=sleeper)
    put = client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=3)
    got = client.get_function_concurrency(FunctionName=sleeper)
    in_get_function = client.get_function(FunctionName=sleeper).get("Concurrency")
    client.delete_function_concurrency(FunctionName=sleeper)
    deleted = client.get_function_concurrency(FunctionName=sleeper)

    assert "ReservedConcurrentExecutions" not in default
    assert put["ReservedConcurrentExecutions"] == 3
    assert got["ReservedConcurrentExecutions"] == 3
    assert in_get_function == {"ReservedConcurrentExecutions": 3}
    assert "ReservedConcurrentExecutions" not in deleted


def test_reserved_concurrency_one_throttles_the_second_concurrent_invoke(client: Any, sleeper: str) -> None:
    client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=1)
    invoke(client, sleeper, {})  # one warm environment, so both requests arrive while it is busy

    answers = invoke_all_at_once(client, sleeper, 2, sleep=2)

    assert answers.count("done") == 1, answers
    assert sum(throttled(a, "ReservedFunctionConcurrentInvocationLimitExceeded") for a in answers) == 1


def test_reserving_past_the_unreserved_minimum_is_invalid_parameter_value(client: Any, sleeper: str) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException) as caught:
        client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=901)

    assert caught.value.response["Error"]["Message"] == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName=sleeper)


def test_reserving_exactly_down_to_the_unreserved_minimum_is_allowed(client: Any, sleeper: str) -> None:
    answer = client.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=900)

    assert answer["ReservedConcurrentExecutions"] == 900
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100


def test_function_concurrency_of_a_missing_function_is_not_found(client: Any) -> None:
    name = unique("missing")

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)


@pytest.fixture
def small_account(tmp_path: Any) -> Iterator[Server]:
    """A server whose account runs at most two executions at once."""
    running = start_server(tmp_path, "--concurrency-limit", "2")
    yield running
    running.stop(timeout=60)


def test_exceeding_the_account_limit_throttles_with_concurrent_invocation_limit_exceeded(
    small_account: Server,
) -> None:
    client = small_account.client()
    name = unique("account-limit")
    deploy_python(client, name, SLEEPER)

    answers = invoke_all_at_once(client, name, 3, sleep=3)

    assert answers.count("done") == 2, answers
    assert sum(throttled(a, "ConcurrentInvocationLimitExceeded") for a in answers) == 1
    assert invoke(client, name, {})[1] == "done"  # the leases were given back
