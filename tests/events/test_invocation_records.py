"""Invocation records and dead-letter messages, compared with AWS's recorded ones."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from lambdad.events.invocation_records import (
    dead_letter_attributes,
    function_response,
    invocation_record,
    service_error,
)
from lambdad.events.sources import NumberAttribute
from tests.recordings import differences, recorded

DESTINATIONS = "test_lambda_destinations.snapshot.json"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
ERROR = {
    "errorMessage": "intentional failure",
    "errorType": "Exception",
    "requestId": "6a9c3c3c-0000-4000-8000-000000000001",
    "stackTrace": [
        '  File "/var/task/handler.py", line 7, in handler\n    raise Exception("intentional failure")\n'
    ],
}


def test_a_failure_record_has_aws_shape() -> None:
    record = invocation_record(
        request_id="6a9c3c3c-0000-4000-8000-000000000001",
        function_arn=FUNCTION_ARN,
        condition="RetriesExhausted",
        attempts=3,
        request_payload=b'{"message": "m-1"}',
        response=function_response(json.dumps(ERROR).encode(), "Unhandled", "$LATEST"),
    )
    wanted = recorded(DESTINATIONS, "TestLambdaDestinationSqs::test_retries", "queue_destination_payload")
    assert differences(record, wanted["Messages"][0]["Body"]) == []
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]


def test_a_success_record_has_no_function_error() -> None:
    record = invocation_record(
        request_id="r",
        function_arn=FUNCTION_ARN,
        condition="Success",
        attempts=1,
        request_payload=b"{}",
        response=function_response(b'{"ok": true}', None, "$LATEST"),
    )
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True}
    assert record["requestPayload"] == {}


def test_a_zero_reserved_concurrency_record_has_no_response() -> None:
    record = invocation_record(
        request_id="6a9c3c3c-0000-4000-8000-000000000002",
        function_arn=FUNCTION_ARN,
        condition="ZeroReservedConcurrency",
        attempts=0,
        request_payload=b"{}",
        response=None,
    )
    wanted = recorded("test_lambda.snapshot.json", "TestLambdaConcurrency::test_reserved_concurrency", "msg")
    assert differences(record, wanted["Body"]) == []


def test_the_timestamp_is_utc_to_the_millisecond() -> None:
    moment = datetime(2026, 12, 1, 13, 4, 5, 678_901, tzinfo=UTC)
    record = invocation_record(
        request_id="r",
        function_arn=FUNCTION_ARN,
        condition="Success",
        attempts=1,
        request_payload=b"{}",
        response=None,
        moment=moment,
    )
    assert record["timestamp"] == "2026-12-01T13:04:05.678Z"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
        invocation_record(
            request_id="r",
            function_arn=FUNCTION_ARN,
            condition="Success",
            attempts=1,
            request_payload=b"{}",
            response=None,
        )["timestamp"],
    )


def test_dead_letter_attributes_are_awss() -> None:
    response = function_response(json.dumps(ERROR).encode(), "Unhandled", "$LATEST")
    attributes = dead_letter_attributes("req-1", "RetriesExhausted", response)
    wanted = recorded(DESTINATIONS, "TestLambdaDLQ::test_dead_letter_queue", "receive_result")
    recorded_attributes = wanted["Messages"][0]["MessageAttributes"]
    assert set(attributes) == set(recorded_attributes)
    assert attributes == {"RequestID": "req-1", "ErrorCode": "200", "ErrorMessage": "intentional failure"}
    number = {name for name, value in attributes.items() if isinstance(value, NumberAttribute)}
    assert number == {n for n, a in recorded_attributes.items() if a["DataType"] == "Number"} == {"ErrorCode"}


def test_a_throttled_events_dead_letter_names_the_throttle_and_cuts_long_messages() -> None:
    attributes = dead_letter_attributes(
        "r", "EventAgeExceeded", service_error(429, "TooManyRequestsException", "x" * 5000)
    )
    assert attributes["ErrorCode"] == "429"
    assert len(attributes["ErrorMessage"]) == 1024


def test_payloads_nested_past_the_parsers_depth_are_kept_as_text() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    record = invocation_record(
        request_id="r",
        function_arn=FUNCTION_ARN,
        condition="Success",
        attempts=1,
        request_payload=deep,
        response=function_response(deep, None, "$LATEST"),
    )
    assert record["requestPayload"] == deep.decode()
    assert record["responsePayload"] == deep.decode()
    json.dumps(record)  # the destination's message can be written
