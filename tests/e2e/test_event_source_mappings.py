"""Create/Get/Update/Delete/ListEventSourceMappings against a real server: answers and errors as AWS
recorded them (Redis stream mappings take the place of AWS's stream sources)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import eventually, unique
from tests.recordings import differences, recorded
from tests.support import LAMBDAD, create_function

pytestmark = pytest.mark.e2e
API = "test_lambda_api.snapshot.json"
MAPPINGS = "TestLambdaEventSourceMappings"


# Streams this module's mappings create on the shared Redis (consumer groups make them), removed after.
STREAM_PREFIX = f"esm-{uuid.uuid4().hex[:6]}-"


def stream_arn(key: str | None = None) -> str:
    return f"arn:aws:redis:us-east-1:000000000000:stream/{key or STREAM_PREFIX + uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", autouse=True)
def remove_streams() -> Iterator[None]:
    yield
    client = redis.Redis()
    for key in client.scan_iter(match=f"{STREAM_PREFIX}*"):
        client.delete(key)
    client.close()


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def error_of(call: Any, **params: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]


def gone(client: Any, mapping_uuid: str) -> bool:
    """Whether GetEventSourceMapping answers 404 for the mapping."""
    try:
        client.get_event_source_mapping(UUID=mapping_uuid)
    except ClientError as error:
        return bool(error.response["ResponseMetadata"]["HTTPStatusCode"] == 404)
    return False


def expected_error(test: str, key: str) -> tuple[int, dict[str, Any]]:
    answer = recorded(API, f"{MAPPINGS}::{test}", key)
    return answer["ResponseMetadata"]["HTTPStatusCode"], answer["Error"]


@pytest.fixture(scope="module")
def function(server: Any) -> str:
    name = unique("esm-target")
    create_function(server.client(), name)
    return name


def test_create_get_delete_answer_as_aws_does(client: Any, function: str) -> None:
    arn = stream_arn()
    created = client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, StartingPosition="LATEST"
    )
    expected = recorded(
        API, f"{MAPPINGS}::test_create_event_filter_criteria_validation", "response-with-empty-filters"
    )
    expected = {**expected, "EventSourceArn": arn}
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert differences(strip(created), strip(expected)) == []
    assert created["EventSourceMappingArn"] == (
        f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{created['UUID']}"
    )
    enabled = eventually(
        lambda: (got := client.get_event_source_mapping(UUID=created["UUID"]))["State"] == "Enabled" and got
    )
    assert differences(strip(enabled), {**strip(expected), "State": "Enabled"}) == []
    deleted = client.delete_event_source_mapping(UUID=created["UUID"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["State"] == "Deleting"
    eventually(lambda: gone(client, created["UUID"]))


def test_recorded_settings_are_answered_back(client: Any, function: str) -> None:
    arn, destination = stream_arn(), stream_arn()
    created = client.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": destination}},
    )
    expected = recorded(API, f"{MAPPINGS}::test_event_source_mapping_lifecycle", "create_response")
    expected = {
        **expected,
        "EventSourceArn": arn,
        "DestinationConfig": {"OnFailure": {"Destination": destination}},
    }
    assert differences(strip(created), strip(expected)) == []
    client.delete_event_source_mapping(UUID=created["UUID"])


@pytest.mark.parametrize("operation", ["get", "delete", "update"])
def test_unknown_uuid_is_not_found(client: Any, operation: str) -> None:
    call = getattr(client, f"{operation}_event_source_mapping")
    got = error_of(call, UUID=str(uuid.uuid4()))
    assert got == expected_error("test_event_source_mapping_exceptions", f"{operation}_unknown_uuid")


def test_create_without_event_source_is_refused(client: Any, function: str) -> None:
    got = error_of(client.create_event_source_mapping, FunctionName=function)
    assert got == expected_error("test_event_source_mapping_exceptions", "create_no_event_source_arn")


def test_create_for_a_missing_function_is_refused(client: Any) -> None:
    got = error_of(
        client.create_event_source_mapping,
        EventSourceArn=stream_arn(),
        FunctionName=unique("missing"),
        StartingPosition="LATEST",
    )
    assert got == expected_error("test_event_source_mapping_exceptions", "create_unknown_params")


def test_stream_without_starting_position_is_refused(client: Any, function: str) -> None:
    got = error_of(client.create_event_source_mapping, EventSourceArn=stream_arn(), FunctionName=function)
    assert got == expected_error("test_create_event_source_validation", "no_starting_position")


def test_invalid_starting_position_is_a_validation_error(unvalidated_client: Any, function: str) -> None:
    got = error_of(
        unvalidated_client.create_event_source_mapping,
        EventSourceArn=stream_arn(),
        FunctionName=function,
        StartingPosition="invalid",
    )
    assert got == expected_error("test_create_event_source_validation", "invalid_starting_position")


def test_source_lambdad_does_not_serve_is_refused_naming_what_it_serves(client: Any, function: str) -> None:
    status, error = error_of(
        client.create_event_source_mapping,
        EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/s",
        FunctionName=function,
        StartingPosition="LATEST",
    )
    assert (status, error["Code"]) == (400, "InvalidParameterValueException")
    assert "arn:aws:redis:" in error["Message"]


@pytest.mark.parametrize("pattern", ["simple string", '{"eventName": ["INSERT"=123}', '{"a": "b"}'])
def test_invalid_filter_is_refused(client: Any, function: str, pattern: str) -> None:
    got = error_of(
        client.create_event_source_mapping,
        EventSourceArn=stream_arn(),
        FunctionName=function,
        StartingPosition="LATEST",
        FilterCriteria={"Filters": [{"Pattern": pattern}]},
    )
    expected = recorded(
        "event_source_mapping/test_lambda_integration_sqs.snapshot.json",
        "test_sqs_invalid_event_filter[simple string]",
        "create_event_source_mapping_exception",
    )
    assert got == (400, expected["Error"])


def test_second_mapping_of_the_same_stream_and_function_conflicts(client: Any, function: str) -> None:
    arn = stream_arn()
    first = client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, StartingPosition="LATEST"
    )
    status, error = error_of(
        client.create_event_source_mapping,
        EventSourceArn=arn,
        FunctionName=function,
        StartingPosition="LATEST",
    )
    assert (status, error["Code"]) == (409, "ResourceConflictException")
    assert error["Message"] == (
        f'The event source arn (" {arn} ") and function (" {function} ") provided mapping already exists. '
        f"Please update or delete the existing mapping with UUID {first['UUID']}"
    )
    client.delete_event_source_mapping(UUID=first["UUID"])


def test_function_arn_keeps_the_qualifier_it_was_given(client: Any, server: Any) -> None:
    name = unique("esm-versions")
    create_function(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    base = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    for given, answered in [
        (name, base),
        (f"{name}:1", f"{base}:1"),
        (f"{base}:live", f"{base}:live"),
        (f"000000000000:function:{name}:$LATEST", f"{base}:$LATEST"),
    ]:
        created = client.create_event_source_mapping(
            EventSourceArn=stream_arn(), FunctionName=given, StartingPosition="LATEST"
        )
        assert created["FunctionArn"] == answered
        client.delete_event_source_mapping(UUID=created["UUID"])
    status, error = error_of(
        client.create_event_source_mapping,
        EventSourceArn=stream_arn(),
        FunctionName=f"{name}:nope",
        StartingPosition="LATEST",
    )
    assert (status, error["Message"]) == (400, "Function does not exist")


def test_update_answers_updating_then_settles(client: Any, function: str) -> None:
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=function, StartingPosition="LATEST"
    )
    eventually(lambda: client.get_event_source_mapping(UUID=created["UUID"])["State"] == "Enabled")
    updated = client.update_event_source_mapping(
        UUID=created["UUID"],
        BatchSize=50,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"a": [1]}})}]},
    )
    assert updated["State"] == "Updating"
    assert updated["BatchSize"] == 50
    assert updated["FilterCriteria"]["Filters"][0]["Pattern"] == '{"data": {"a": [1]}}'
    eventually(lambda: client.get_event_source_mapping(UUID=created["UUID"])["State"] == "Enabled")
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_created_disabled_settles_disabled(client: Any, function: str) -> None:
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=function, StartingPosition="LATEST", Enabled=False
    )
    assert created["State"] == "Creating"
    eventually(lambda: client.get_event_source_mapping(UUID=created["UUID"])["State"] == "Disabled")
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_mapping_outlives_its_function(client: Any) -> None:
    name = unique("esm-deleted")
    create_function(client, name)
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=name, StartingPosition="LATEST"
    )
    eventually(lambda: client.get_event_source_mapping(UUID=created["UUID"])["State"] == "Enabled")
    client.delete_function(FunctionName=name)
    after = client.get_event_source_mapping(UUID=created["UUID"])
    expected = recorded(
        API, f"{MAPPINGS}::test_event_source_mapping_lifecycle_delete_function", "get_response_post_delete"
    )
    assert after["State"] == expected["State"] == "Enabled"
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_list_filters_by_source_and_function_and_pages(client: Any, server: Any) -> None:
    names = [unique("esm-list"), unique("esm-list")]
    for name in names:
        create_function(client, name)
    arn = stream_arn()
    made = [
        client.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="LATEST")[
            "UUID"
        ]
        for name in names
    ]
    other = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=names[0], StartingPosition="LATEST"
    )["UUID"]
    by_source = client.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    assert [m["UUID"] for m in by_source] == made
    by_function = client.list_event_source_mappings(FunctionName=names[0])["EventSourceMappings"]
    assert sorted(m["UUID"] for m in by_function) == sorted([made[0], other])
    both = client.list_event_source_mappings(EventSourceArn=arn, FunctionName=names[1])["EventSourceMappings"]
    assert [m["UUID"] for m in both] == [made[1]]
    first = client.list_event_source_mappings(EventSourceArn=arn, MaxItems=1)
    assert [m["UUID"] for m in first["EventSourceMappings"]] == made[:1]
    second = client.list_event_source_mappings(EventSourceArn=arn, MaxItems=1, Marker=first["NextMarker"])
    assert [m["UUID"] for m in second["EventSourceMappings"]] == made[1:]
    assert "NextMarker" not in second
    paginated = client.get_paginator("list_event_source_mappings").paginate(
        FunctionName=names[0], PaginationConfig={"PageSize": 1}
    )
    assert sum(len(page["EventSourceMappings"]) for page in paginated) == 2
    for mapping_uuid in [*made, other]:
        client.delete_event_source_mapping(UUID=mapping_uuid)


def test_lambdad_view_lists_mappings_with_state_and_lag(client: Any, server: Any, function: str) -> None:
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=function, StartingPosition="LATEST"
    )

    def row() -> dict[str, Any] | None:
        rows = server.own("/_lambdad/event-source-mappings", timeout=5)["EventSourceMappings"]
        found = next((r for r in rows if r["UUID"] == created["UUID"]), None)
        return found if found and found["State"] == "Enabled" and found["Lag"] is not None else None

    found = eventually(row)
    assert found["Lag"] == 0
    assert found["Connected"] is True
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_cli_lists_mappings(client: Any, server: Any, function: str) -> None:
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=function, StartingPosition="LATEST"
    )
    eventually(lambda: client.get_event_source_mapping(UUID=created["UUID"])["State"] == "Enabled")
    shown = subprocess.run(
        [str(LAMBDAD), "mappings", "--endpoint", server.endpoint, "--json"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = json.loads(shown.stdout)["EventSourceMappings"]
    assert any(row["UUID"] == created["UUID"] and row["State"] == "Enabled" for row in rows)
    table = subprocess.run(
        [str(LAMBDAD), "mappings", "--endpoint", server.endpoint],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=server.cli_env(COLUMNS="300"),
    )
    assert created["UUID"] in table.stdout
    assert "Enabled" in table.stdout
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_tags_of_a_mapping(client: Any, function: str) -> None:
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn(), FunctionName=function, StartingPosition="LATEST", Tags={"testtag": "v"}
    )
    arn = created["EventSourceMappingArn"]
    assert client.list_tags(Resource=arn)["Tags"] == {"testtag": "v"}
    client.tag_resource(Resource=arn, Tags={"A": "tag-a", "B": "tag-b"})
    client.untag_resource(Resource=arn, TagKeys=["testtag", "B", "missing"])
    assert client.list_tags(Resource=arn)["Tags"] == {"A": "tag-a"}
    client.delete_event_source_mapping(UUID=created["UUID"])
    eventually(lambda: gone(client, created["UUID"]))
    expected = recorded(
        API, "TestLambdaTag::test_tag_exceptions[event_source_mapping]", "not_found_exception_list"
    )
    status, error = error_of(client.list_tags, Resource=arn)
    assert (status, error["Code"]) == (404, expected["Error"]["Code"])
    assert error["Message"] == f"Event source mapping not found: {arn}"
