"""Published versions end to end: PublishVersion, ListVersionsByFunction, qualifiers on reads, deletes
and invokes, ``Publish=True``, compared with AWS's recorded answers where they exist."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.invoke_support import (
    ACTIVE_WAIT,
    deploy_python,
    invoke,
    server_fixture,
    tail,
    unique,
    wait_updated,
)
from tests.recordings import differences, recorded
from tests.support import ROLE, Server, create_function, make_zip

pytestmark = pytest.mark.e2e
server = server_fixture()
API = "test_lambda_api.snapshot.json"
LIFECYCLE = "TestLambdaVersions::test_version_lifecycle"
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:000000000000:function"

RETURNS_VERSION = """
import os

def handler(event, context):
    return {{
        "code": "{marker}",
        "version": context.function_version,
        "env_version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "arn": context.invoked_function_arn,
    }}
"""


def create_like_aws(client: Any, name: str, **overrides: Any) -> dict[str, Any]:
    """A function as AWS's recordings made theirs (``index.handler``), waiting until Active."""
    code = {"ZipFile": make_zip({"index.py": "def handler(event, context):\n    return event\n"})}
    return create_function(client, name, Handler="index.handler", Code=code, **overrides)


def strip(answer: dict[str, Any], *also: str) -> dict[str, Any]:
    """An answer without its metadata (and members AWS's recording lacks for reasons of its own:
    the recorded functions were made without Environment, which AWS then leaves out)."""
    return {k: v for k, v in answer.items() if k not in ("ResponseMetadata", *also)}


def matches(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    drop = [key for key in ("Environment",) if key not in expected]
    return differences(strip(actual, *drop), strip(expected))


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


@pytest.fixture
def unvalidated(server: Server) -> Any:
    return server.client(parameter_validation=False)


def test_version_lifecycle_matches_aws(client: Any) -> None:
    name = unique("lifecycle")
    create_like_aws(client, name, Description="No version :(")
    listed = client.list_versions_by_function(FunctionName=name)
    assert (
        matches(listed["Versions"][0], recorded(API, LIFECYCLE, "list_versions_result")["Versions"][0]) == []
    )

    client.update_function_configuration(FunctionName=name, Description="First version :)")
    wait_updated(client, name)
    first = client.publish_version(FunctionName=name, Description="First version description :)")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert matches(first, recorded(API, LIFECYCLE, "first_publish_response")) == []
    got = client.get_function(FunctionName=name, Qualifier="1")
    assert (
        matches(got["Configuration"], recorded(API, LIFECYCLE, "first_publish_get_function")["Configuration"])
        == []
    )
    config = client.get_function_configuration(FunctionName=name, Qualifier="1")
    assert matches(config, recorded(API, LIFECYCLE, "first_publish_get_function_config")) == []

    client.update_function_configuration(FunctionName=name, Description="Second version :))")
    wait_updated(client, name)
    # The published version is a snapshot: $LATEST's change does not reach it.
    after = client.get_function(FunctionName=name, Qualifier="1")["Configuration"]
    assert after["Description"] == "First version description :)"
    assert after["RevisionId"] == first["RevisionId"]

    second = client.publish_version(FunctionName=name)
    assert matches(second, recorded(API, LIFECYCLE, "second_publish_response")) == []
    # Nothing changed since version 2: AWS answers version 2 again, whatever the Description.
    third = client.publish_version(FunctionName=name, Description="Third version description :)))")
    assert matches(third, recorded(API, LIFECYCLE, "third_publish_response")) == []
    assert third["RevisionId"] == second["RevisionId"]

    listed = client.list_versions_by_function(FunctionName=name)
    expected = recorded(API, LIFECYCLE, "list_versions_result_after_third_publish")
    assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "1", "2"]
    for actual, wanted in zip(listed["Versions"], expected["Versions"], strict=True):
        assert matches(actual, wanted) == []

    assert (
        client.delete_function(FunctionName=name, Qualifier="1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    )
    listed = client.list_versions_by_function(FunctionName=name)
    expected = recorded(API, LIFECYCLE, "list_versions_result_after_deletion_of_first_version")
    for actual, wanted in zip(listed["Versions"], expected["Versions"], strict=True):
        assert matches(actual, wanted) == []
    # Numbers are never reused.
    client.update_function_configuration(FunctionName=name, Description="Third")
    wait_updated(client, name)
    assert client.publish_version(FunctionName=name)["Version"] == "3"


def test_publishing_changes_latest_revision_but_not_the_versions(client: Any) -> None:
    name = unique("revisions")
    create_function(client, name)
    before = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    published = client.publish_version(FunctionName=name, RevisionId=before)
    client.get_waiter("published_version_active").wait(FunctionName=name, Qualifier="1")
    assert (
        client.get_function(FunctionName=name, Qualifier="1")["Configuration"]["RevisionId"]
        == (published["RevisionId"])
    )
    assert client.get_function(FunctionName=name)["Configuration"]["RevisionId"] != before


def test_publish_preconditions_answer_as_aws(client: Any) -> None:
    name = unique("preconditions")
    create_like_aws(client, name)
    with pytest.raises(client.exceptions.PreconditionFailedException) as excinfo:
        client.publish_version(FunctionName=name, RevisionId="wrong")
    expected = recorded(
        API, "TestLambdaVersions::test_publish_with_wrong_revisionid", "publish_wrong_revisionid_exc"
    )
    assert differences(excinfo.value.response["Error"], expected["Error"]) == []
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412

    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.publish_version(FunctionName=name, CodeSha256="somenonexistentsha256")
    expected = recorded(API, "TestLambdaVersions::test_publish_with_wrong_sha256", "publish_wrong_sha256_exc")
    assert differences(excinfo.value.response["Error"], expected["Error"]) == []

    sha = client.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    published = client.publish_version(FunctionName=name, CodeSha256=sha)
    expected = recorded(API, "TestLambdaVersions::test_publish_with_wrong_sha256", "publish_result")
    assert matches(published, expected) == []


def test_publish_of_a_missing_function_is_not_found(client: Any) -> None:
    missing = unique("missing")
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.publish_version(FunctionName=missing)
    assert excinfo.value.response["Error"]["Message"] == f"Function not found: {ACCOUNT_ARN}:{missing}"


def test_create_with_publish_answers_version_one_then_both_settle(client: Any) -> None:
    name = unique("create-publish")
    created = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": "def handler(event, context):\n    return event\n"})},
        Publish=True,
    )
    test = "TestLambdaVersions::test_publish_version_on_create"
    assert matches(created, recorded(API, test, "create_response")) == []
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
    client.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier="1", WaiterConfig=ACTIVE_WAIT
    )
    version = client.get_function(FunctionName=name, Qualifier="1")
    assert (
        matches(version["Configuration"], recorded(API, test, "get_function_version_result")["Configuration"])
        == []
    )
    latest = client.get_function(FunctionName=name, Qualifier="$LATEST")
    assert (
        matches(latest["Configuration"], recorded(API, test, "get_function_latest_result")["Configuration"])
        == []
    )
    unqualified = client.get_function(FunctionName=name)
    assert (
        matches(unqualified["Configuration"], recorded(API, test, "get_function_result")["Configuration"])
        == []
    )
    again = client.publish_version(FunctionName=name)
    assert matches(again, recorded(API, test, "repeated_publish_response")) == []
    listed = client.list_versions_by_function(FunctionName=name)
    for actual, wanted in zip(
        listed["Versions"], recorded(API, test, "list_versions_result_after_publish")["Versions"], strict=True
    ):
        assert matches(actual, wanted) == []


def test_update_code_with_publish_answers_the_new_pending_version(client: Any) -> None:
    name = unique("update-publish")
    create_function(client, name)
    updated = client.update_function_code(
        FunctionName=name,
        ZipFile=make_zip({"handler.py": "def handler(e, c):\n    return 2\n"}),
        Publish=True,
    )
    test = "TestLambdaVersions::test_publish_with_update"
    expected = recorded(API, test, "update_function_code_result")
    assert (
        differences(
            {k: updated.get(k) for k in ("FunctionArn", "Version", "State", "StateReasonCode")},
            {k: expected[k] for k in ("FunctionArn", "Version", "State", "StateReasonCode")},
        )
        == []
    )
    assert "LastUpdateStatus" not in updated
    latest = client.get_function(FunctionName=name, Qualifier="$LATEST")["Configuration"]
    assert latest["CodeSha256"] == updated["CodeSha256"]
    client.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier="1", WaiterConfig=ACTIVE_WAIT
    )
    settled = client.get_function(FunctionName=name, Qualifier="1")["Configuration"]
    assert (settled["State"], settled["LastUpdateStatus"]) == ("Active", "Successful")


def test_reads_of_a_missing_version_are_not_found(client: Any) -> None:
    name = unique("no-version")
    create_function(client, name)
    for read in (client.get_function, client.get_function_configuration):
        with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
            read(FunctionName=name, Qualifier="1221")
        expected = recorded(
            API,
            "TestLambdaFunction::test_ops_on_nonexisting_version[get_function]",
            "version_not_found_exception",
        )
        assert differences(excinfo.value.response["Error"], expected["Error"]) == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=f"{name}:7")


def test_deleting_versions_answers_as_aws(client: Any) -> None:
    name = unique("delete-version")
    create_function(client, name)
    # A version that is not there: AWS answers 204, twice.
    client.delete_function(FunctionName=name, Qualifier="1233")
    client.delete_function(FunctionName=name, Qualifier="1233")
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(client.exceptions.ResourceConflictException) as excinfo:
        client.delete_function(FunctionName=f"{ACCOUNT_ARN}:{name}:1")
    assert excinfo.value.response["Error"]["Message"] == (
        "Unable to delete version because the following aliases reference it: [live]"
    )
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.delete_function(FunctionName=name, Qualifier="live")
    client.delete_alias(FunctionName=name, Name="live")
    client.delete_function(FunctionName=name, Qualifier="1")
    assert [v["Version"] for v in client.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST"
    ]

    client.delete_function(FunctionName=name)
    test = "TestLambdaFunction::test_delete_on_nonexisting_version"
    for qualifier in ({}, {"Qualifier": "1233"}):
        with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
            client.delete_function(FunctionName=name, **qualifier)
        expected = recorded(API, test, "delete_function_response_non_existent_with_qualifier")
        assert differences(excinfo.value.response["Error"], expected["Error"]) == []


def test_listing_versions_pages_in_number_order(client: Any) -> None:
    name = unique("many-versions")
    create_function(client, name)
    for number in range(1, 12):
        client.update_function_configuration(FunctionName=name, Description=f"v{number}")
        wait_updated(client, name)
        assert client.publish_version(FunctionName=name)["Version"] == str(number)
    seen: list[str] = []
    marker = None
    while True:
        page = client.list_versions_by_function(
            FunctionName=name, MaxItems=5, **({"Marker": marker} if marker else {})
        )
        seen += [v["Version"] for v in page["Versions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == ["$LATEST", *[str(n) for n in range(1, 12)]]
    listed = [
        (f["Version"], f["FunctionArn"])
        for p in client.get_paginator("list_functions").paginate(
            FunctionVersion="ALL", PaginationConfig={"PageSize": 4}
        )
        for f in p["Functions"]
        if f["FunctionName"] == name
    ]
    assert [v for v, _ in listed] == seen
    assert listed[0][1] == f"{ACCOUNT_ARN}:{name}:$LATEST"
    assert listed[11][1] == f"{ACCOUNT_ARN}:{name}:11"
    default = [f for f in client.list_functions()["Functions"] if f["FunctionName"] == name]
    assert [f["FunctionArn"] for f in default] == [f"{ACCOUNT_ARN}:{name}"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_versions_by_function(FunctionName=unique("missing"))


def test_qualifier_in_name_and_parameter_must_agree(unvalidated: Any) -> None:
    test = "TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[get_function]"
    with pytest.raises(unvalidated.exceptions.ResourceNotFoundException) as excinfo:
        unvalidated.get_function(FunctionName=f"{ACCOUNT_ARN}:some-function:$LATEST", Qualifier="$LATEST")
    assert differences(excinfo.value.response["Error"], recorded(API, test, "match_exception")["Error"]) == []


def test_invoking_a_version_runs_the_code_it_was_published_with(server: Server, client: Any) -> None:
    name = unique("runs-old")
    deploy_python(client, name, RETURNS_VERSION.format(marker="one"))
    client.publish_version(FunctionName=name)
    client.update_function_code(
        FunctionName=name, ZipFile=make_zip({"handler.py": RETURNS_VERSION.format(marker="two")})
    )
    wait_updated(client, name)

    response, payload = invoke(client, name, {}, Qualifier="1", LogType="Tail")
    assert payload == {"code": "one", "version": "1", "env_version": "1", "arn": f"{ACCOUNT_ARN}:{name}:1"}
    assert response["ExecutedVersion"] == "1"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "1"
    assert " Version: 1\n" in tail(response) or tail(response).split("\n")[0].endswith("Version: 1")

    response, payload = invoke(client, name, {})
    assert payload["code"] == "two" and payload["version"] == "$LATEST"
    assert payload["arn"] == f"{ACCOUNT_ARN}:{name}"
    assert response["ExecutedVersion"] == "$LATEST"
    # And the qualified ARN works as the FunctionName.
    _, payload = invoke(client, f"{ACCOUNT_ARN}:{name}:1", {})
    assert payload["code"] == "one"
