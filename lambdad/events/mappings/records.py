"""What a poller reads from and writes for its function, as AWS shapes it: the partial batch response,
batches split under the invoke payload limit, and the failure record sent to an on-failure destination.
No I/O here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdad.events.sources import SourceMessage

# Lambda's synchronous invoke payload limit; a batch's event stays under it (with room for the envelope).
MAX_EVENT_BYTES = 6 * 1024 * 1024 - 64 * 1024
RETRY_EXHAUSTED, RECORD_AGE_EXCEEDED = "RetryAttemptsExhausted", "RecordAgeExceeded"


@dataclass(frozen=True)
class BatchOutcome:
    """How one invocation of a batch went, as AWS judges it."""

    # Messages the function is done with.
    succeeded: tuple[SourceMessage, ...]
    # Messages to retry (the whole batch on a function error or a garbled partial response).
    failed: tuple[SourceMessage, ...]
    # Why the failed ones failed, for the log ("" when none failed).
    reason: str = ""


def judge(
    batch: Sequence[SourceMessage],
    payload: bytes,
    function_error: str | None,
    report_item_failures: bool,
    ordered: bool,
) -> BatchOutcome:
    """AWS's reading of a function's answer to a batch.

    A function error fails the whole batch. With ``ReportBatchItemFailures``, ``{"batchItemFailures":
    [{"itemIdentifier": id}, ...]}`` fails just those (on a stream: everything from the lowest failed
    item on, AWS's checkpoint); an empty or null list, an empty or null response are a success; an
    identifier that is empty, null, under another key or not in the batch, or a response that is not
    JSON, fail the whole batch.
    """
    everything = tuple(batch)
    if function_error is not None:
        return BatchOutcome((), everything, f"function error ({function_error})")
    if not report_item_failures:
        return BatchOutcome(everything, ())
    try:
        response = json.loads(payload) if payload.strip() else None
    except (ValueError, RecursionError):
        return BatchOutcome((), everything, "the partial batch response is not JSON")
    if not isinstance(response, dict):
        return BatchOutcome(everything, ())
    failures = response.get("batchItemFailures")
    if not failures:
        return BatchOutcome(everything, ())
    if not isinstance(failures, list):
        return BatchOutcome((), everything, "batchItemFailures is not a list")
    by_id = {message.item_id: index for index, message in enumerate(everything)}
    failed_indexes: set[int] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in by_id:
            return BatchOutcome(
                (), everything, f"invalid itemIdentifier {identifier!r} in the partial batch response"
            )
        failed_indexes.add(by_id[identifier])
    if ordered:
        first = min(failed_indexes)
        return BatchOutcome(everything[:first], everything[first:], "reported as a batch item failure")
    return BatchOutcome(
        tuple(m for i, m in enumerate(everything) if i not in failed_indexes),
        tuple(m for i, m in enumerate(everything) if i in failed_indexes),
        "reported as a batch item failure",
    )


def split_by_size(
    messages: Sequence[SourceMessage], limit: int = MAX_EVENT_BYTES
) -> list[list[SourceMessage]]:
    """``messages`` in order, cut into runs whose payloads stay under ``limit`` bytes (a message over
    the limit alone makes a run of its own: the invocation then fails and the message follows the
    mapping's failure handling)."""
    runs: list[list[SourceMessage]] = []
    current: list[SourceMessage] = []
    size = 0
    for message in messages:
        weight = message.size or len(json.dumps(message.record))
        if current and size + weight > limit:
            runs.append(current)
            current, size = [], 0
        current.append(message)
        size += weight
    if current:
        runs.append(current)
    return runs


# Every stream lambdad reads is one shard to AWS's eyes: failure records name it as Kinesis names a
# stream's first shard.
SHARD_ID = "shardId-000000000000"
# DynamoDB Streams' batch info gives arrival times in whole seconds (Kinesis's: milliseconds).
_WHOLE_SECOND_ARRIVALS = {"DDBStreamBatchInfo"}


def failure_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    executed_version: str,
    function_error: str | None,
    event_source_arn: str,
    batch: Sequence[SourceMessage],
    batch_info_key: str,
    now: float,
) -> dict[str, Any]:
    """AWS's on-failure record for a stream batch (as for Kinesis and DynamoDB Streams), naming the
    batch by its first and last item rather than carrying it."""
    first, last = batch[0], batch[-1]
    arrival = iso_seconds if batch_info_key in _WHOLE_SECOND_ARRIVALS else iso_time
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": executed_version,
            "functionError": function_error,
        },
        "version": "1.0",
        "timestamp": iso_time(now),
        batch_info_key: {
            "shardId": SHARD_ID,
            "startSequenceNumber": first.item_id,
            "endSequenceNumber": last.item_id,
            "approximateArrivalOfFirstRecord": arrival(first.sent_at),
            "approximateArrivalOfLastRecord": arrival(last.sent_at),
            "batchSize": len(batch),
            "streamArn": event_source_arn,
        },
    }


def iso_time(epoch: float) -> str:
    """AWS's timestamp form in failure records: ``2022-07-13T13:48:01.000Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(epoch: float) -> str:
    """The same in whole seconds, as DynamoDB Streams' batch info has it: ``2022-07-13T13:48:01Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
