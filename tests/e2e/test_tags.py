"""TagResource, UntagResource, ListTags as AWS answers them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import create_function

pytestmark = pytest.mark.e2e
ARN = "arn:aws:lambda:us-east-1:000000000000:function:{}"


def test_tag_lifecycle_matches_aws(client: Any) -> None:
    create_function(client, "tagged")
    arn = ARN.format("tagged")
    assert client.tag_resource(Resource=arn, Tags={"A": "tag-a"})["ResponseMetadata"]["HTTPStatusCode"] == 204
    client.tag_resource(Resource=arn, Tags={"B": "tag-b", "C": "tag-c"})
    client.tag_resource(Resource=arn, Tags={"C": "tag-c-newsuffix", "D": "tag-d"})
    assert client.list_tags(Resource=arn)["Tags"] == {
        "A": "tag-a",
        "B": "tag-b",
        "C": "tag-c-newsuffix",
        "D": "tag-d",
    }
    assert client.untag_resource(Resource=arn, TagKeys=["A"])["ResponseMetadata"]["HTTPStatusCode"] == 204
    client.untag_resource(Resource=arn, TagKeys=["B", "C", "nonexisting"])
    assert client.list_tags(Resource=arn)["Tags"] == {"D": "tag-d"}
    assert client.get_function(FunctionName="tagged")["Tags"] == {"D": "tag-d"}
    client.untag_resource(Resource=arn, TagKeys=["D"])
    assert client.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in client.get_function(FunctionName="tagged")


def test_tags_given_at_create_are_kept(client: Any) -> None:
    create_function(client, "born-tagged", Tags={"testtag": "value"})
    assert client.list_tags(Resource=ARN.format("born-tagged"))["Tags"] == {"testtag": "value"}


def test_tag_errors_match_aws(client: Any, unvalidated_client: Any) -> None:
    create_function(client, "tag-errors")
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.tag_resource(Resource=ARN.format("doesnotexist"), Tags={"a": "b"})
    assert str(excinfo.value).endswith("Function not found: " + ARN.format("doesnotexist"))
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.tag_resource(Resource=ARN.format("tag-errors") + ":1", Tags={"a": "b"})
    assert "Tags on function aliases and versions are not supported" in str(excinfo.value)
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.tag_resource(Resource=ARN.format("tag-errors"), Tags={})
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.tag_resource(Resource=ARN.format("tag-errors"), Tags={f"{i}_key": "v" for i in range(51)})
    assert "Number of tags exceeds resource tag limit." in str(excinfo.value)
    with pytest.raises(Exception) as excinfo:
        unvalidated_client.tag_resource(Resource="arn:aws:something", Tags={"a": "b"})
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"  # type: ignore[attr-defined]
    assert "at 'resource' failed to satisfy constraint" in str(excinfo.value)
