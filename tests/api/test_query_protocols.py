"""One port, every protocol: real boto3 ``iam``, ``sts``, ``sns`` (query) and ``ec2`` clients against an
``AwsApi`` serving test tables beside Lambda's, over real HTTP. botocore parsing the answers and raising
the right ``ClientError`` codes is the check that the wire format is AWS's."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from lambdad.api import AwsApi, OperationTable, ServiceApi, Services
from lambdad.api.operations import Call
from lambdad.errors import InternalFailure, LambdaError, ResourceNotFoundException
from tests.api.served import Served

iam = OperationTable()
sts = OperationTable()
sns = OperationTable()
ec2 = OperationTable()
lambda_table = OperationTable()
signer = OperationTable()
logs = OperationTable()
scheduler = OperationTable()
seen: dict[str, Any] = {}


class NoSuchEntity(LambdaError):
    status = 404


CREATED = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)


def _user(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Path": "/",
        "UserName": name,
        "UserId": "AIDAEXAMPLE",
        "Arn": f"arn:aws:iam::000000000000:user/{name}",
        "CreateDate": CREATED,
        **extra,
    }


@iam.operation("CreateUser")
def create_user(call: Call) -> dict[str, Any]:
    seen["CreateUser"] = call.params
    return {"User": _user(call.params["UserName"], Tags=call.params.get("Tags"))}


@iam.operation("ListUsers")
def list_users(call: Call) -> dict[str, Any]:
    return {"Users": [_user("alice"), _user("bob")], "IsTruncated": False}


@iam.operation("GetUser")
def get_user(call: Call) -> dict[str, Any]:
    raise NoSuchEntity(f"The user with name {call.params['UserName']} cannot be found.")


@iam.operation("DeleteUser")
def delete_user(call: Call) -> dict[str, Any]:
    raise RuntimeError("a bug")


@sts.operation("GetCallerIdentity")
def get_caller_identity(call: Call) -> dict[str, Any]:
    return {"UserId": call.principal.user_id, "Account": call.principal.account, "Arn": call.principal.arn}


@sns.operation("CreateTopic")
def create_topic(call: Call) -> dict[str, Any]:
    seen["CreateTopic"] = call.params
    return {"TopicArn": f"arn:aws:sns:{call.scope.region}:000000000000:{call.params['Name']}"}


@sns.operation("GetTopicAttributes")
def get_topic_attributes(call: Call) -> dict[str, Any]:
    return {"Attributes": {"DisplayName": "shown", "Policy": "{}"}}


@ec2.operation("DescribeVpcs")
def describe_vpcs(call: Call) -> dict[str, Any]:
    seen["DescribeVpcs"] = call.params
    vpc = {
        "VpcId": "vpc-1",
        "CidrBlock": "10.0.0.0/16",
        "IsDefault": True,
        "Tags": [{"Key": "a", "Value": "b"}],
    }
    return {"Vpcs": [vpc, {"VpcId": "vpc-2", "IsDefault": False}]}


@ec2.operation("DeleteVpc")
def delete_vpc(call: Call) -> dict[str, Any]:
    if call.params["VpcId"] != "vpc-1":
        raise _ec2_not_found(call.params["VpcId"])
    return {}


def _ec2_not_found(vpc: str) -> LambdaError:
    error = LambdaError(f"The vpc ID '{vpc}' does not exist")
    error.__class__ = type("InvalidVpcID.NotFound", (LambdaError,), {})
    return error


@lambda_table.operation("GetFunction")
def get_function(call: Call) -> dict[str, Any]:
    raise ResourceNotFoundException(f"Function not found: {call.params['FunctionName']}")


@signer.operation("ListTagsForResource")
def signer_tags(call: Call) -> dict[str, Any]:
    return {"tags": {"service": "signer"}}


@scheduler.operation("ListTagsForResource")
def scheduler_tags(call: Call) -> dict[str, Any]:
    return {"Tags": [{"Key": "service", "Value": "scheduler"}]}


@logs.operation("CreateLogGroup")
def create_log_group(call: Call) -> dict[str, Any]:
    seen["CreateLogGroup"] = call.params
    return {}


@logs.operation("DescribeLogGroups")
def describe_log_groups(call: Call) -> dict[str, Any]:
    group = {"logGroupName": call.params.get("logGroupNamePrefix", "g"), "creationTime": 1765000000000}
    return {"logGroups": [group]}


@logs.operation("DeleteLogGroup")
def delete_log_group(call: Call) -> dict[str, Any]:
    raise ResourceNotFoundException("The specified log group does not exist.")


def _apis() -> list[ServiceApi]:
    return [
        ServiceApi("lambda", lambda_table),
        ServiceApi("scheduler", scheduler),
        ServiceApi("signer", signer),
        ServiceApi("logs", logs, internal_error=InternalFailure),
        ServiceApi("iam", iam, internal_error=InternalFailure),
        ServiceApi("sts", sts, internal_error=InternalFailure),
        ServiceApi("sns", sns, internal_error=InternalFailure),
        ServiceApi("ec2", ec2, internal_error=InternalFailure),
    ]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with Served(AwsApi(_apis(), cast(Services, None), "000000000000", "us-east-1")) as running:
        yield running


def test_query_answers_parse_in_botocore(served: Served) -> None:
    users = served.client("iam").list_users()
    assert [u["UserName"] for u in users["Users"]] == ["alice", "bob"]
    assert users["Users"][0]["CreateDate"] == CREATED
    assert users["IsTruncated"] is False
    assert users["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert users["ResponseMetadata"]["RequestId"]


def test_query_requests_parse_from_botocore_forms(served: Served) -> None:
    tags = [{"Key": "team", "Value": "a"}, {"Key": "cost", "Value": "b"}]
    created = served.client("iam").create_user(UserName="carol", Path="/", Tags=tags)
    assert seen["CreateUser"] == {"UserName": "carol", "Path": "/", "Tags": tags}
    assert created["User"]["Tags"] == tags


def test_query_maps_both_ways(served: Served) -> None:
    client = served.client("sns", region="eu-west-1")
    arn = client.create_topic(Name="t", Attributes={"DisplayName": "x", "FifoTopic": "false"})["TopicArn"]
    assert arn == "arn:aws:sns:eu-west-1:000000000000:t"
    assert seen["CreateTopic"]["Attributes"] == {"DisplayName": "x", "FifoTopic": "false"}
    assert client.get_topic_attributes(TopicArn=arn)["Attributes"] == {"DisplayName": "shown", "Policy": "{}"}


def test_query_errors_are_the_models_exceptions(served: Served) -> None:
    client = served.client("iam")
    with pytest.raises(client.exceptions.NoSuchEntityException) as raised:
        client.get_user(UserName="nobody")
    error = raised.value.response
    assert error["Error"] == {
        "Type": "Sender",
        "Code": "NoSuchEntity",
        "Message": "The user with name nobody cannot be found.",
    }
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["ResponseMetadata"]["RequestId"]


def test_query_validation_is_a_validation_error(served: Served) -> None:
    with pytest.raises(ClientError) as raised:
        served.client("iam", parameter_validation=False).get_user(UserName="x" * 200)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"].startswith("1 validation error detected: Value '")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_query_bug_is_an_internal_failure(served: Served) -> None:
    with pytest.raises(ClientError) as raised:
        served.client("iam").delete_user(UserName="x")
    assert raised.value.response["Error"]["Code"] == "InternalFailure"
    assert raised.value.response["Error"]["Type"] == "Receiver"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_sts_sees_the_principal(served: Served) -> None:
    identity = served.client("sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"], identity["UserId"]) == (
        "000000000000",
        "arn:aws:iam::000000000000:root",
        "000000000000",
    )


def test_an_operation_without_a_handler_is_not_implemented(served: Served) -> None:
    with pytest.raises(ClientError) as raised:
        served.client("sts").get_session_token()
    assert raised.value.response["Error"]["Code"] == "NotImplementedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_ec2_lists_and_answers(served: Served) -> None:
    client = served.client("ec2")
    vpcs = client.describe_vpcs(
        VpcIds=["vpc-1", "vpc-2"], Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}]
    )
    assert seen["DescribeVpcs"] == {
        "VpcIds": ["vpc-1", "vpc-2"],
        "Filters": [{"Name": "cidr", "Values": ["10.0.0.0/16"]}],
    }
    assert vpcs["Vpcs"] == [
        {
            "VpcId": "vpc-1",
            "CidrBlock": "10.0.0.0/16",
            "IsDefault": True,
            "Tags": [{"Key": "a", "Value": "b"}],
        },
        {"VpcId": "vpc-2", "IsDefault": False},
    ]
    assert vpcs["ResponseMetadata"]["RequestId"]
    assert client.delete_vpc(VpcId="vpc-1")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_ec2_errors_carry_dotted_codes(served: Served) -> None:
    with pytest.raises(ClientError) as raised:
        served.client("ec2").delete_vpc(VpcId="vpc-9")
    error = raised.value.response
    assert error["Error"] == {"Code": "InvalidVpcID.NotFound", "Message": "The vpc ID 'vpc-9' does not exist"}
    assert error["ResponseMetadata"]["RequestId"]


def _post(served: Served, body: str, path: str = "/") -> tuple[int, ElementTree.Element]:
    request = urllib.request.Request(
        served.endpoint + path,
        data=body.encode(),
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, ElementTree.fromstring(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, ElementTree.fromstring(error.read())


def _text(root: ElementTree.Element, tag: str) -> str | None:
    """The text of the first element named ``tag``, whatever its namespace."""
    for element in root.iter():
        if element.tag.split("}")[-1] == tag:
            return element.text
    return None


def test_an_unknown_action_is_invalid_action(served: Served) -> None:
    status, root = _post(served, "Action=MakeCoffee&Version=2010-05-08")
    assert status == 400
    assert root.tag.endswith("ErrorResponse")
    assert _text(root, "Code") == "InvalidAction"
    assert _text(root, "Message") == "Could not find operation MakeCoffee for version 2010-05-08"


def test_an_unknown_action_signed_for_ec2_is_ec2s_invalid_action(served: Served) -> None:
    client = served.client("ec2")
    # botocore signs a form naming an action EC2 lacks: the credential scope picks EC2's error shape.
    client.meta.events.register(
        "before-sign.ec2.DescribeVpcs",
        lambda request, **_: setattr(request, "data", {**request.data, "Action": "MakeCoffee"}),
    )
    with pytest.raises(ClientError) as raised:
        client.describe_vpcs()
    assert raised.value.response["Error"] == {
        "Code": "InvalidAction",
        "Message": "The action MakeCoffee is not valid for this web service.",
    }
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_version_chooses_between_query_services(served: Served) -> None:
    status, root = _post(served, "Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 200
    assert root.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}GetCallerIdentityResponse"
    assert _text(root, "Arn") == "arn:aws:iam::000000000000:root"


def test_lambda_and_scheduler_keep_their_paths(served: Served) -> None:
    client = served.client("lambda")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="f")
    with pytest.raises(ClientError) as raised:
        served.client("scheduler").list_schedule_groups()
    assert raised.value.response["Error"]["Code"] == "NotImplementedException"


def test_overlapping_paths_go_to_the_service_signed_for(served: Served) -> None:
    # Signer's and the scheduler's ListTagsForResource are both GET /tags/{resourceArn}.
    arn = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/p"
    assert served.client("signer").list_tags_for_resource(resourceArn=arn)["tags"] == {"service": "signer"}
    arn = "arn:aws:scheduler:us-east-1:000000000000:schedule-group/g"
    tags = served.client("scheduler").list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert tags == [{"Key": "service", "Value": "scheduler"}]


def test_control_characters_in_a_message_still_make_xml(served: Served) -> None:
    # The validation message quotes the value; XML cannot carry \x01 even escaped.
    with pytest.raises(ClientError) as raised:
        served.client("iam", parameter_validation=False).get_user(UserName="bad\x01name")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Value 'bad\ufffdname' at 'userName'" in raised.value.response["Error"]["Message"]


def test_json_protocol_both_ways(served: Served) -> None:
    client = served.client("logs")
    client.create_log_group(logGroupName="/aws/lambda/f", tags={"team": "a"})
    assert seen["CreateLogGroup"] == {"logGroupName": "/aws/lambda/f", "tags": {"team": "a"}}
    groups = client.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    assert groups == [{"logGroupName": "/aws/lambda/", "creationTime": 1765000000000}]
    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        client.delete_log_group(logGroupName="nope")
    assert raised.value.response["Error"]["Message"] == "The specified log group does not exist."
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_json_protocol_unknown_target(served: Served) -> None:
    request = urllib.request.Request(
        served.endpoint + "/",
        data=b"{}",
        headers={"x-amz-target": "Logs_20140328.MakeCoffee", "content-type": "application/x-amz-json-1.1"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert raised.value.code == 400
    assert json.loads(raised.value.read())["__type"] == "UnknownOperationException"
