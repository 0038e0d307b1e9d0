"""Asynchronous invocation settings end to end (Put/Get/Update/Delete/ListFunctionEventInvokeConfigs),
compared with AWS's recorded answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.e2e.invoke_support import unique
from tests.recordings import differences, recorded
from tests.support import create_function

pytestmark = pytest.mark.e2e
API = "test_lambda_api.snapshot.json"
EXCEPTIONS = "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_exceptions"
LIFECYCLE = "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_lifecycle"
DESTINATIONS = "test_lambda_destinations.snapshot.json"


def matches(answer: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    assert isinstance(answer.get("LastModified", datetime.now()), datetime)
    drop = ("ResponseMetadata", "LastModified")
    return differences(
        {k: v for k, v in answer.items() if k not in drop}, {k: v for k, v in wanted.items() if k not in drop}
    )


def error_matches(error: Any, wanted: dict[str, Any]) -> list[str]:
    answer = error.value.response
    found = differences(answer["Error"], wanted["Error"], "Error")
    if answer["ResponseMetadata"]["HTTPStatusCode"] != wanted["ResponseMetadata"]["HTTPStatusCode"]:
        found.append(f"status {answer['ResponseMetadata']['HTTPStatusCode']}")
    return found


def test_lifecycle_matches_aws(client: Any) -> None:
    name = unique("eic-life")
    create_function(client, name)

    def check(key: str, answer: dict[str, Any]) -> None:
        assert matches(answer, recorded(API, LIFECYCLE, key)) == [], key

    check(
        "put_invokeconfig_retries_0",
        client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0),
    )
    # Put replaces everything: the retry setting is gone.
    check(
        "put_invokeconfig_eventage_60",
        client.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60),
    )
    check(
        "update_invokeconfig_eventage_nochange",
        client.update_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60),
    )
    check(
        "update_invokeconfig_retries",
        client.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1),
    )
    check("get_invokeconfig", client.get_function_event_invoke_config(FunctionName=name))
    check(
        "get_invokeconfig_latest",
        client.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST"),
    )
    listed = client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    wanted = recorded(API, LIFECYCLE, "list_single_invokeconfig")["FunctionEventInvokeConfigs"]
    assert [matches(a, w) for a, w in zip(listed, wanted, strict=True)] == [[]]

    version = client.publish_version(FunctionName=name)["Version"]
    with pytest.raises(client.exceptions.ResourceNotFoundException) as error:
        client.get_function_event_invoke_config(FunctionName=name, Qualifier=version)
    assert error_matches(error, recorded(API, LIFECYCLE, "get_invokeconfig_postpublish")) == []
    check(
        "put_published_invokeconfig",
        client.put_function_event_invoke_config(
            FunctionName=name, Qualifier=version, MaximumEventAgeInSeconds=120
        ),
    )
    check(
        "get_published_invokeconfig",
        client.get_function_event_invoke_config(FunctionName=name, Qualifier=version),
    )
    client.delete_function_event_invoke_config(FunctionName=name)
    listed = client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    wanted = recorded(API, LIFECYCLE, "list_paging_nolimit_postdelete")["FunctionEventInvokeConfigs"]
    assert [matches(a, w) for a, w in zip(listed, wanted, strict=True)] == [[]]


def test_qualifiers_destinations_and_errors_match_aws(client: Any, unvalidated_client: Any) -> None:
    name = unique("eic-errors")
    other = unique("eic-other")
    create_function(client, name)
    create_function(client, other)
    version = client.publish_version(FunctionName=name)["Version"]
    client.create_alias(FunctionName=name, Name="eventinvokealias", FunctionVersion=version)
    arn = client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    missing_arn = arn.replace(name, "doesnotexist")

    def ok(key: str, **params: Any) -> None:
        answer = client.put_function_event_invoke_config(**params)
        assert matches(answer, recorded(API, EXCEPTIONS, key)) == [], key

    def fails(key: str, call: Any = None, **params: Any) -> None:
        with pytest.raises(client.exceptions.ClientError) as error:
            (call or client.put_function_event_invoke_config)(**params)
        assert error_matches(error, recorded(API, EXCEPTIONS, key)) == [], key

    fails("put_functionname_name_notfound", FunctionName="doesnotexist", MaximumRetryAttempts=1)
    fails("put_functionname_arn_notfound", FunctionName=missing_arn, MaximumRetryAttempts=1)
    fails("put_functionname_nootherargs", FunctionName=name)
    fails(
        "put_destination_lambda_doesntexist",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": missing_arn}},
    )
    fails(
        "put_destination_recursive", FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    ok(
        "put_destination_other_lambda",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": arn.replace(name, other)}},
    )
    fails(
        "put_destination_invalid_service_arn",
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": arn.replace(":lambda:", ":iam:")}},
    )
    ok("put_destination_success_no_destination_arn", FunctionName=name, DestinationConfig={"OnSuccess": {}})
    ok("put_destination_failure_no_destination_arn", FunctionName=name, DestinationConfig={"OnFailure": {}})
    fails(
        "put_destination_invalid_arn_pattern",
        unvalidated_client.put_function_event_invoke_config,
        FunctionName=name,
        DestinationConfig={"OnFailure": {"Destination": arn.replace("arn:aws:", "arn:aws:_-/!")}},
    )
    ok("put_destination_latest", FunctionName=name, MaximumRetryAttempts=1)
    ok(
        "put_destination_latest_explicit_qualifier",
        FunctionName=name,
        Qualifier="$LATEST",
        MaximumRetryAttempts=1,
    )
    ok("put_destination_version", FunctionName=name, Qualifier=version, MaximumRetryAttempts=1)
    ok(
        "put_alias_functionname_qualifier",
        FunctionName=name,
        Qualifier="eventinvokealias",
        MaximumRetryAttempts=1,
    )
    fails("put_alias_doesnotexist", FunctionName=name, Qualifier="doesnotexist", MaximumRetryAttempts=1)
    ok("put_alias_qualifiedarn", FunctionName=f"{arn}:eventinvokealias", MaximumRetryAttempts=1)
    ok(
        "put_alias_qualifiedarn_qualifier",
        FunctionName=f"{arn}:eventinvokealias",
        Qualifier="eventinvokealias",
        MaximumRetryAttempts=1,
    )
    fails(
        "put_alias_qualifiedarn_qualifierconflict",
        FunctionName=f"{arn}:eventinvokealias",
        Qualifier="$LATEST",
        MaximumRetryAttempts=1,
    )
    ok("put_alias_shorthand", FunctionName=f"{name}:eventinvokealias", MaximumRetryAttempts=1)
    ok("put_version_shorthand", FunctionName=f"{name}:{version}", MaximumRetryAttempts=1)
    ok(
        "put_shorthand_qualifier_match",
        FunctionName=f"{name}:$LATEST",
        Qualifier="$LATEST",
        MaximumRetryAttempts=1,
    )
    fails(
        "put_shorthand_qualifier_mismatch_1",
        FunctionName=f"{name}:$LATEST",
        Qualifier=version,
        MaximumRetryAttempts=1,
    )
    ok(
        "put_maxevent_maxvalue_result",
        FunctionName=name,
        MaximumRetryAttempts=2,
        MaximumEventAgeInSeconds=21600,
    )
    ok("put_pre_overwrite", FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60)
    ok("put_post_overwrite", FunctionName=name, MaximumRetryAttempts=0)
    client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
    )
    updated = client.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert matches(updated, recorded(API, EXCEPTIONS, "update_response")) == []

    listed = client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    wanted = recorded(API, EXCEPTIONS, "list_configs")["FunctionEventInvokeConfigs"]
    assert [matches(a, w) for a, w in zip(listed, wanted, strict=True)] == [[], [], []]
    page = client.list_function_event_invoke_configs(FunctionName=name, MaxItems=2)
    assert len(page["FunctionEventInvokeConfigs"]) == 2
    rest = client.list_function_event_invoke_configs(FunctionName=name, Marker=page["NextMarker"])
    assert [c["FunctionArn"] for c in rest["FunctionEventInvokeConfigs"]] == [f"{arn}:eventinvokealias"]

    for qualifier in ("$LATEST", version, "eventinvokealias"):
        client.delete_function_event_invoke_config(FunctionName=name, Qualifier=qualifier)
    assert client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []

    fails("delete_function_not_found", client.delete_function_event_invoke_config, FunctionName=name)
    fails(
        "delete_function_doesnotexist",
        client.delete_function_event_invoke_config,
        FunctionName="doesnotexist",
    )
    fails(
        "list_function_doesnotexist", client.list_function_event_invoke_configs, FunctionName="doesnotexist"
    )
    fails("get_function_doesnotexist", client.get_function_event_invoke_config, FunctionName="doesnotexist")
    fails(
        "get_qualifier_doesnotexist",
        client.get_function_event_invoke_config,
        FunctionName=name,
        Qualifier="doesnotexist",
    )
    fails(
        "update_eventinvokeconfig_function_doesnotexist",
        client.update_function_event_invoke_config,
        FunctionName="doesnotexist",
        MaximumRetryAttempts=1,
    )
    fails(
        "update_eventinvokeconfig_config_doesnotexist_with_qualifier",
        client.update_function_event_invoke_config,
        FunctionName=name,
        Qualifier="eventinvokealias",
        MaximumRetryAttempts=1,
    )
    fails(
        "update_eventinvokeconfig_config_doesnotexist_without_qualifier",
        client.update_function_event_invoke_config,
        FunctionName=name,
        MaximumRetryAttempts=1,
    )


def test_server_validates_limits_as_aws(unvalidated_client: Any, client: Any) -> None:
    name = unique("eic-server-limits")
    create_function(client, name)
    with pytest.raises(client.exceptions.ClientError) as error:
        unvalidated_client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=3)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "'maximumRetryAttempts' failed to satisfy constraint" in error.value.response["Error"]["Message"]


def test_sqs_destinations_as_recorded(client: Any) -> None:
    name = unique("eic-sqs")
    create_function(client, name)
    queue = "arn:aws:sqs:us-east-1:000000000000:destination-queue"
    answer = client.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": queue}, "OnFailure": {"Destination": queue}},
    )
    wanted = recorded(
        DESTINATIONS,
        "TestLambdaDestinationSqs::test_assess_lambda_destination_invocation[payload0]",
        "put_function_event_invoke_config",
    )
    assert matches(answer, wanted) == []


def test_deleting_a_version_alias_or_function_removes_its_config(client: Any) -> None:
    name = unique("eic-delete")
    create_function(client, name)
    version = client.publish_version(FunctionName=name)["Version"]
    client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    for qualifier in ("$LATEST", version, "live"):
        client.put_function_event_invoke_config(
            FunctionName=name, Qualifier=qualifier, MaximumRetryAttempts=1
        )
    client.delete_alias(FunctionName=name, Name="live")
    client.delete_function(FunctionName=name, Qualifier=version)
    listed = client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["$LATEST"]
    client.delete_function(FunctionName=name)
    create_function(client, name)
    assert client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []
