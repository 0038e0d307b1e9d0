"""AWS's reading of partial batch responses, batches cut under the payload limit, failure records."""

from __future__ import annotations

import json
import uuid

import pytest

from lambdad.events.mappings.records import failure_record, iso_time, judge, split_by_size
from lambdad.events.sources import SourceMessage
from tests.recordings import differences, recorded


def batch(*ids: str) -> list[SourceMessage]:
    return [
        SourceMessage(item_id=i, record={"id": i}, filter_view={}, size=10, sent_at=1657720081.0) for i in ids
    ]


def ids(messages: tuple[SourceMessage, ...]) -> list[str]:
    return [m.item_id for m in messages]


def failures(*identifiers: object) -> bytes:
    return json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in identifiers]}).encode()


def test_function_error_fails_the_whole_batch() -> None:
    outcome = judge(batch("a", "b"), b'{"errorMessage": "x"}', "Unhandled", True, ordered=False)
    assert (ids(outcome.succeeded), ids(outcome.failed)) == ([], ["a", "b"])


def test_without_report_batch_item_failures_the_answer_is_ignored() -> None:
    outcome = judge(batch("a", "b"), failures("a"), None, False, ordered=False)
    assert ids(outcome.succeeded) == ["a", "b"]


@pytest.mark.parametrize(
    "payload",
    [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}', b'"ok"'],
    ids=["empty", "null", "empty object", "empty list", "null list", "a string"],
)
def test_success_answers(payload: bytes) -> None:
    outcome = judge(batch("a", "b"), payload, None, True, ordered=True)
    assert ids(outcome.succeeded) == ["a", "b"]
    assert outcome.failed == ()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        failures(""),
        failures(None),
        failures("unknown"),
        json.dumps({"batchItemFailures": [{"foo": "a"}]}).encode(),
        json.dumps({"batchItemFailures": [{"foo": None}]}).encode(),
        json.dumps({"batchItemFailures": "a"}).encode(),
    ],
    ids=["not json", "empty id", "null id", "id not in batch", "bad key", "bad key null", "not a list"],
)
def test_garbled_answers_fail_the_whole_batch(payload: bytes) -> None:
    outcome = judge(batch("a", "b"), payload, None, True, ordered=True)
    assert (ids(outcome.succeeded), ids(outcome.failed)) == ([], ["a", "b"])


def test_queue_retries_only_the_failed_items() -> None:
    outcome = judge(batch("a", "b", "c"), failures("b"), None, True, ordered=False)
    assert (ids(outcome.succeeded), ids(outcome.failed)) == (["a", "c"], ["b"])


def test_stream_retries_from_the_lowest_failed_item() -> None:
    outcome = judge(batch("a", "b", "c", "d"), failures("c", "b"), None, True, ordered=True)
    assert (ids(outcome.succeeded), ids(outcome.failed)) == (["a"], ["b", "c", "d"])


def test_split_keeps_runs_under_the_limit_in_order() -> None:
    runs = split_by_size(batch("a", "b", "c", "d", "e"), limit=25)
    assert [[m.item_id for m in run] for run in runs] == [["a", "b"], ["c", "d"], ["e"]]


def test_failure_record_has_aws_shape() -> None:
    record = failure_record(
        request_id="r",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        condition="RetryAttemptsExhausted",
        invoke_count=2,
        executed_version="$LATEST",
        function_error="Unhandled",
        event_source_arn="arn:aws:redis:us-east-1:000000000000:stream/s",
        batch=batch("1-0", "2-0"),
        batch_info_key="RedisStreamBatchInfo",
        now=1657720081.0,
    )
    assert record == {
        "requestContext": {
            "requestId": "r",
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 2,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2022-07-13T13:48:01.000Z",
        "RedisStreamBatchInfo": {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": "1-0",
            "endSequenceNumber": "2-0",
            "approximateArrivalOfFirstRecord": "2022-07-13T13:48:01.000Z",
            "approximateArrivalOfLastRecord": "2022-07-13T13:48:01.000Z",
            "batchSize": 2,
            "streamArn": "arn:aws:redis:us-east-1:000000000000:stream/s",
        },
    }


ESM = "event_source_mapping/"
RECORDED_FAILURES = {
    "KinesisBatchInfo": (
        ESM + "test_lambda_integration_kinesis.snapshot.json",
        "test_kinesis_event_source_mapping_with_on_failure_destination_config",
        "sqs_payload",
        "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
    ),
    "DDBStreamBatchInfo": (
        ESM + "test_lambda_integration_dynamodbstreams.snapshot.json",
        "test_dynamodb_event_source_mapping_with_on_failure_destination_config",
        "destination_queue_messages",
        "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2022-07-13T13:48:01.000",
    ),
}


@pytest.mark.parametrize("batch_info_key", sorted(RECORDED_FAILURES))
def test_failure_record_is_awss_recorded_record_whole(batch_info_key: str) -> None:
    snapshot, test, key, stream = RECORDED_FAILURES[batch_info_key]
    wanted = recorded(snapshot, test, key)["Messages"][0]["Body"]
    record = failure_record(
        request_id=str(uuid.uuid4()),
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        condition="RetryAttemptsExhausted",
        invoke_count=2,
        executed_version="$LATEST",
        function_error="Unhandled",
        event_source_arn=stream,
        batch=batch("49631606977862578513478218389946374935939133208733384706"),
        batch_info_key=batch_info_key,
        now=1657720081.0,
    )
    assert differences(record, wanted) == []
    assert list(record) == list(wanted)
    assert list(record[batch_info_key]) == list(wanted[batch_info_key]), "shardId first, as AWS"
    # Placeholders hide values but keep their form: <timestamp:2022-07-13T13:48:01Z> (whole seconds for
    # DynamoDB Streams, milliseconds for Kinesis).
    for field in ("approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"):
        form = wanted[batch_info_key][field].removeprefix("<timestamp:").removesuffix(">")
        assert record[batch_info_key][field] == form
    assert record["timestamp"] == wanted["timestamp"].removeprefix("<timestamp:").removesuffix(">")
    shard = wanted[batch_info_key]["shardId"]
    assert record[batch_info_key]["shardId"] == (
        shard if not shard.startswith("<") else "shardId-000000000000"
    )


def test_iso_time_has_milliseconds() -> None:
    assert iso_time(0.1234) == "1970-01-01T00:00:00.123Z"
