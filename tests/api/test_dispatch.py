"""One dispatcher, several services: requests reach the service whose paths they name, and each
service's errors keep its own AWS shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import httpx

from lambdad.api import AwsApi, OperationTable, ServiceApi, Services
from lambdad.api.operations import Call
from lambdad.api.scheduler import scheduler_api
from lambdad.api.throttle import RateLimiter
from lambdad.errors import ResourceNotFoundException

lambda_table = OperationTable()
scheduler_table = OperationTable()


@lambda_table.operation("GetFunction")
def get_function(call: Call) -> dict[str, Any]:
    raise ResourceNotFoundException(f"Function not found: {call.params['FunctionName']}")


@scheduler_table.operation("GetSchedule")
def get_schedule(call: Call) -> dict[str, Any]:
    raise RuntimeError("a bug")


@scheduler_table.operation("GetScheduleGroup")
def get_schedule_group(call: Call) -> dict[str, Any]:
    raise ResourceNotFoundException(f"Schedule group {call.params['Name']} does not exist.")


class Client:
    """GETs sent to an ASGI app in-process."""

    def __init__(self, app: AwsApi) -> None:
        self._app = app

    def get(self, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://lambdad") as http:
                return await http.get(path)

        return asyncio.run(send())


def client(throttle: RateLimiter | None = None) -> Client:
    scheduler = scheduler_api()
    apis = [
        ServiceApi("lambda", lambda_table),
        ServiceApi(
            "scheduler",
            scheduler_table,
            internal_error=scheduler.internal_error,
            throttled=scheduler.throttled,
            message_key=scheduler.message_key,
            fault_in_body=scheduler.fault_in_body,
        ),
    ]
    return Client(AwsApi(apis, cast(Services, None), "000000000000", "us-east-1", throttle))


def test_lambda_errors_keep_lambdas_shape() -> None:
    answer = client().get("/2015-03-31/functions/f")
    assert answer.status_code == 404
    assert answer.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(answer.content) == {"Type": "User", "Message": "Function not found: f"}


def test_scheduler_errors_carry_only_a_message() -> None:
    answer = client().get("/schedule-groups/g")
    assert answer.status_code == 404
    assert answer.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(answer.content) == {"Message": "Schedule group g does not exist."}


def test_an_unexpected_scheduler_failure_is_an_internal_server_exception() -> None:
    answer = client().get("/schedules/s")
    assert answer.status_code == 500
    assert answer.headers["x-amzn-ErrorType"] == "InternalServerException"
    assert set(json.loads(answer.content)) == {"Message"}


def test_a_scheduler_operation_without_a_handler_is_not_implemented() -> None:
    answer = client().get("/schedules")
    assert answer.status_code == 501
    assert answer.headers["x-amzn-ErrorType"] == "NotImplementedException"


def test_throttling_answers_in_each_services_terms() -> None:
    throttled = client(RateLimiter(0.001, burst=1))
    throttled.get("/schedule-groups/g")
    answer = throttled.get("/schedule-groups/g")
    assert (answer.status_code, answer.headers["x-amzn-ErrorType"]) == (429, "ThrottlingException")
    assert json.loads(answer.content) == {"Message": "Rate exceeded."}
    answer = throttled.get("/2015-03-31/functions/f")
    assert (answer.status_code, answer.headers["x-amzn-ErrorType"]) == (429, "TooManyRequestsException")


def test_a_path_no_service_routes_is_an_unknown_operation() -> None:
    answer = client().get("/nothing/here")
    assert (answer.status_code, answer.headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")
