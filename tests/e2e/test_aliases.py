"""Aliases end to end: Create/Get/List/Update/DeleteAlias and RoutingConfig with AWS's answers, invokes
through an alias, a weighted alias really splitting traffic, and aliases surviving a restart."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.invoke_support import deploy_python, invoke, server_fixture, start_server, unique, wait_updated
from tests.recordings import differences, recorded
from tests.support import Server, create_function, make_zip

pytestmark = pytest.mark.e2e
server = server_fixture()
API = "test_lambda_api.snapshot.json"
LIFECYCLE = "TestLambdaAlias::test_alias_lifecycle"
ROUTING = "TestLambdaAlias::test_notfound_and_invalid_routingconfigs"
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:000000000000:function"

TINY = """
def handler(event, context):
    return {{"code": "{marker}", "arn": context.invoked_function_arn}}
"""


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def two_versions(client: Any, name: str) -> None:
    """A function with version 1 (testenv=staging) and version 2 (testenv=prod), as AWS's recordings."""
    code = {"ZipFile": make_zip({"index.py": "def handler(event, context):\n    return event\n"})}
    create_function(
        client, name, Handler="index.handler", Code=code, Environment={"Variables": {"testenv": "staging"}}
    )
    client.publish_version(FunctionName=name)
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"testenv": "prod"}})
    wait_updated(client, name)
    client.publish_version(FunctionName=name)


def error_of(excinfo: Any) -> dict[str, Any]:
    return dict(excinfo.value.response["Error"])


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


@pytest.fixture
def unvalidated(server: Server) -> Any:
    return server.client(parameter_validation=False)


def test_alias_lifecycle_matches_aws(client: Any) -> None:
    name = unique("alias-life")
    two_versions(client, name)
    created = client.create_alias(
        FunctionName=name,
        Name="aliasname1_1",
        FunctionVersion="1",
        Description="custom-alias",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == f"{ACCOUNT_ARN}:{name}:aliasname1_1"
    assert differences(strip(created), strip(recorded(API, LIFECYCLE, "create_alias_1_1"))) == []
    got = client.get_alias(FunctionName=name, Name="aliasname1_1")
    assert differences(strip(got), strip(recorded(API, LIFECYCLE, "get_alias_1_1"))) == []
    for reference in (
        {"FunctionName": name, "Qualifier": "aliasname1_1"},
        {"FunctionName": created["AliasArn"]},
    ):
        config = client.get_function(**reference)["Configuration"]
        expected = recorded(API, LIFECYCLE, "get_function_alias_1_1")["Configuration"]
        assert differences(config, expected) == []
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_function(FunctionName=name, Qualifier="aliasdoesnotexist")
    assert (
        differences(error_of(excinfo), recorded(API, LIFECYCLE, "get_function_alias_notfound_exc")["Error"])
        == []
    )

    client.create_alias(
        FunctionName=name, Name="aliasname1_2", FunctionVersion="1", Description="custom-alias"
    )
    third = client.create_alias(FunctionName=name, Name="aliasname1_3", FunctionVersion="1")
    assert differences(strip(third), strip(recorded(API, LIFECYCLE, "create_alias_1_3"))) == []
    client.create_alias(FunctionName=name, Name="aliasname2", FunctionVersion="2", Description="custom-alias")
    listed = (
        client.get_paginator("list_aliases")
        .paginate(FunctionName=name, PaginationConfig={"PageSize": 1})
        .build_full_result()
    )
    expected_list = recorded(API, LIFECYCLE, "list_aliases_for_fnname")["Aliases"]
    assert len(listed["Aliases"]) == 4
    for actual, wanted in zip(listed["Aliases"], expected_list, strict=True):
        assert differences(actual, wanted) == []

    updated = client.update_alias(
        FunctionName=name, Name="aliasname1_1", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert differences(strip(updated), strip(recorded(API, LIFECYCLE, "update_alias_1_1"))) == []
    assert updated["RevisionId"] != created["RevisionId"]
    unchanged = client.update_alias(FunctionName=name, Name="aliasname1_2")
    assert differences(strip(unchanged), strip(recorded(API, LIFECYCLE, "update_alias_1_2"))) == []

    for_version = client.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in for_version] == ["aliasname1_1", "aliasname1_2", "aliasname1_3"]
    deleted = client.delete_alias(FunctionName=name, Name="aliasname1_1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = client.list_aliases(FunctionName=name)["Aliases"]
    expected_after = recorded(API, LIFECYCLE, "list_aliases_for_fnname_afterdelete")["Aliases"]
    for actual, wanted in zip(after, expected_after, strict=True):
        assert differences(actual, wanted) == []


def test_invalid_routing_configs_answer_as_aws(unvalidated: Any) -> None:
    client = unvalidated
    name = unique("alias-routing")
    two_versions(client, name)
    cases = [
        ("routing_config_exc_toomany", "1", {"1": 0.8, "2": 0.2}),
        ("routing_config_exc_toohigh", "1", {"2": 2}),
        ("routing_config_exc_subzero", "1", {"2": -1}),
        ("routing_config_exc_sameversion", "1", {"1": 0.5}),
        ("target_version_doesnotexist", "10", {"2": 0.5}),
        ("routing_config_exc_version_doesnotexist", "1", {"10": 0.5}),
        ("target_version_exc_version_latest", "$LATEST", {"1": 0.5}),
        ("routing_config_exc_version_latest", "1", {"$LATEST": 0.5}),
    ]
    for key, version, weights in cases:
        with pytest.raises(client.exceptions.ClientError) as excinfo:
            client.create_alias(
                FunctionName=name,
                Name="custom",
                FunctionVersion=version,
                RoutingConfig={"AdditionalVersionWeights": weights},
            )
        expected = recorded(API, ROUTING, key)
        assert differences(error_of(excinfo), expected["Error"]) == [], key
        assert (
            excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]
            == (expected["ResponseMetadata"]["HTTPStatusCode"])
        )
    latest = client.create_alias(FunctionName=name, Name="custom-latest", FunctionVersion="$LATEST")
    assert differences(strip(latest), strip(recorded(API, ROUTING, "create-alias-latest"))) == []
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.create_alias(
            FunctionName=f"{name}-unknown",
            Name="custom",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
        )
    expected = recorded(API, ROUTING, "routing_config_exc_fn_doesnotexist")["Error"]
    assert differences(error_of(excinfo), expected) == []
    empty = client.create_alias(
        FunctionName=name,
        Name="custom-empty-routingconfig",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    assert differences(strip(empty), strip(recorded(API, ROUTING, "create_alias_empty_routingconfig"))) == []
    normal = client.create_alias(
        FunctionName=name,
        Name="custom",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert differences(strip(normal), strip(recorded(API, ROUTING, "create_alias_response"))) == []
    with pytest.raises(client.exceptions.ResourceConflictException) as excinfo:
        client.create_alias(FunctionName=name, Name="custom", FunctionVersion="1")
    assert (
        differences(error_of(excinfo), recorded(API, ROUTING, "routing_config_exc_already_exist")["Error"])
        == []
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_alias(FunctionName=name, Name="non-existent")
    assert differences(error_of(excinfo), recorded(API, ROUTING, "alias_does_not_exist_esc")["Error"]) == []


def test_alias_names_and_missing_aliases_answer_as_aws(unvalidated: Any) -> None:
    client = unvalidated
    name = unique("alias-names")
    create_function(client, name)
    client.publish_version(FunctionName=name)
    dated = client.create_alias(FunctionName=name, Name="2024-01-02", FunctionVersion="1")
    assert dated["Name"] == "2024-01-02"
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.create_alias(FunctionName=name, Name="2024", FunctionVersion="1")
    expected = recorded(API, "TestLambdaAlias::test_alias_naming", "create_alias_number_exception")["Error"]
    assert differences(error_of(excinfo), expected) == []
    # Deleting an alias that is not there: 204, as AWS answers; updating one: 404.
    assert (
        client.delete_alias(FunctionName=name, Name="non-existent")["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.update_alias(FunctionName=name, Name="non-existent")
    expected = recorded(API, "TestLambdaAlias::test_non_existent_alias_update", "update_alias_response")[
        "Error"
    ]
    assert differences(error_of(excinfo), expected) == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_aliases(FunctionName=unique("missing"))


def test_update_alias_revision_precondition(client: Any) -> None:
    name = unique("alias-revision")
    create_function(client, name)
    client.publish_version(FunctionName=name)
    latest_before = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    created = client.create_alias(FunctionName=name, Name="revision_alias", FunctionVersion="1")
    # Creating an alias changes no version's RevisionId.
    assert client.get_function(FunctionName=name)["Configuration"]["RevisionId"] == latest_before
    with pytest.raises(client.exceptions.PreconditionFailedException) as excinfo:
        client.update_alias(FunctionName=name, Name="revision_alias", RevisionId="wrong")
    test = "TestLambdaRevisions::test_function_revisions_version_and_alias"
    assert (
        differences(error_of(excinfo), recorded(API, test, "update_alias_revision_exception")["Error"]) == []
    )
    updated = client.update_alias(
        FunctionName=name,
        Name="revision_alias",
        Description="something changed",
        RevisionId=created["RevisionId"],
    )
    assert differences(strip(updated), strip(recorded(API, test, "update_alias_response_rev_a2"))) == []


def test_invoking_an_alias_runs_its_version_and_follows_it_when_repointed(client: Any) -> None:
    name = unique("alias-invoke")
    deploy_python(client, name, TINY.format(marker="one"))
    client.publish_version(FunctionName=name)
    client.update_function_code(
        FunctionName=name, ZipFile=make_zip({"handler.py": TINY.format(marker="two")})
    )
    wait_updated(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")

    response, payload = invoke(client, name, {}, Qualifier="live")
    assert payload == {"code": "one", "arn": f"{ACCOUNT_ARN}:{name}:live"}
    assert response["ExecutedVersion"] == "1"
    client.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    response, payload = invoke(client, f"{name}:live", {})
    assert payload["code"] == "two" and response["ExecutedVersion"] == "2"
    assert invoke(client, name, {}, InvocationType="DryRun", Qualifier="live")[0]["StatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.invoke(FunctionName=name, Qualifier="nope")
    assert excinfo.value.response["Error"]["Message"] == f"Function not found: {ACCOUNT_ARN}:{name}:nope"


def test_weighted_alias_splits_a_thousand_invokes_near_its_weight(client: Any) -> None:
    name = unique("alias-weights")
    deploy_python(client, name, "def handler(event, context):\n    return 1\n")
    client.publish_version(FunctionName=name)
    client.update_function_configuration(FunctionName=name, Description="second")
    wait_updated(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    counts: Counter[str] = Counter()
    for _ in range(1000):
        response = client.invoke(FunctionName=name, Qualifier="canary")
        assert json.loads(response["Payload"].read()) == 1
        counts[response["ExecutedVersion"]] += 1
    assert set(counts) == {"1", "2"}
    # Binomial(1000, 0.3): standard deviation ~14.5; five of them either side.
    assert 228 <= counts["2"] <= 372, counts


def test_versions_and_aliases_survive_a_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    try:
        client = first.client()
        name = unique("durable")
        two_versions(client, name)
        client.create_alias(
            FunctionName=name,
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
        )
        alias_before = client.get_alias(FunctionName=name, Name="live")
        versions_before = client.list_versions_by_function(FunctionName=name)["Versions"]
    finally:
        first.stop()
    second = Server(first.data_dir, port=first.port).start(timeout=60)
    try:
        client = second.client()
        assert strip(client.get_alias(FunctionName=name, Name="live")) == strip(alias_before)
        assert client.list_versions_by_function(FunctionName=name)["Versions"] == versions_before
        client.update_function_configuration(FunctionName=name, Description="after restart")
        wait_updated(client, name)
        assert client.publish_version(FunctionName=name)["Version"] == "3"
    finally:
        second.stop()
