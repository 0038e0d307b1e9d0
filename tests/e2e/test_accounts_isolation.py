"""Several accounts on one ``--auth sigv4`` server, made by ``lambdad accounts create --json``: each sees
only its own functions (two accounts' functions of one name are two functions), another account's
function is invoked only when both sides allow it (the function's resource policy AND the caller's
identity policy, with AWS's AccessDeniedException otherwise), and an Event invocation, a schedule and an
event source mapping of an account run that account's function, in that account.

Every function prints the ARN it was invoked as (``context.invoked_function_arn``, which names the
account the invocation acts in) and returns it with the account it was deployed by.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdad.events.sources.sqs import make_client
from tests.brokers import moto_server
from tests.e2e.invoke_support import deploy_python, eventually, invoke, log_messages, unique
from tests.support import LAMBDAD, Server, make_zip

pytestmark = pytest.mark.e2e
REGION = "us-east-1"
ROOT_KEY = {"aws_access_key_id": "AKIAW3ROOTKEY0000001", "aws_secret_access_key": "r" * 40}
SOURCE = """
def handler(event, context):
    print("RAN " + context.invoked_function_arn)
    return {"deployedBy": "%s", "invokedAs": context.invoked_function_arn}
"""
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@dataclass(frozen=True)
class Account:
    """An account made by ``lambdad accounts create``, with its root key and an execution role."""

    id: str
    keys: dict[str, str]
    endpoint: str

    @property
    def role(self) -> str:
        return f"arn:aws:iam::{self.id}:role/exec"

    def client(self, service: str = "lambda", keys: dict[str, str] | None = None) -> Any:
        keys = keys or self.keys
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}),
            aws_access_key_id=keys["aws_access_key_id"],
            aws_secret_access_key=keys["aws_secret_access_key"],
        )

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{self.id}:function:{name}"

    def deploy(self, name: str) -> None:
        deploy_python(self.client(), name, SOURCE % self.id, Role=self.role)


@dataclass(frozen=True)
class Platform:
    server: Server
    a: Account
    b: Account
    sqs_endpoint: str


def _create_account(data_dir: Path, key_file: Path, endpoint: str) -> Account:
    made = subprocess.run(
        [
            str(LAMBDAD),
            "accounts",
            "create",
            "--json",
            "--data-dir",
            str(data_dir),
            "--key-file",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(made.stdout)
    keys = {"aws_access_key_id": answer["AccessKeyId"], "aws_secret_access_key": answer["SecretAccessKey"]}
    account = Account(answer["AccountId"], keys, endpoint)
    account.client("iam").create_role(RoleName="exec", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    return account


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    sqs = moto_server().start()
    sqs_endpoint = f"http://127.0.0.1:{sqs.port}"
    directory = tmp_path_factory.mktemp("accounts")
    key_file = directory / "keyring"
    server = Server(
        directory / "data",
        extra_args=["--auth", "sigv4", "--key-file", str(key_file)],
        env={
            "LAMBDAD_ROOT_ACCESS_KEY_ID": ROOT_KEY["aws_access_key_id"],
            "LAMBDAD_ROOT_SECRET_ACCESS_KEY": ROOT_KEY["aws_secret_access_key"],
            "LAMBDAD_EVENT_SOURCES": f"sqs={sqs_endpoint}",
            "LAMBDAD_SCHEDULE_MINUTE_SECONDS": "2",
            "LAMBDAD_SCHEDULE_TICK_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        },
    ).start(timeout=60)
    try:
        a = _create_account(server.data_dir, key_file, server.endpoint)
        b = _create_account(server.data_dir, key_file, server.endpoint)
        yield Platform(server, a, b, sqs_endpoint)
    finally:
        server.stop(timeout=60)
        sqs.cleanup()


def _user(account: Account, policy: dict[str, Any] | None) -> dict[str, str]:
    """A new IAM user of ``account`` with an access key and, if given, one inline policy."""
    iam = account.client("iam")
    name = unique("caller")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="invoke", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def _runs(server: Server, name: str, arn: str) -> int:
    """How many times the function ``name`` has printed that it ran as ``arn``."""
    return sum(message.strip() == f"RAN {arn}" for message in log_messages(server, name))


def _denied(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    assert (error["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException",
        403,
    )
    return str(error["Message"])


def test_each_account_sees_and_runs_only_its_own_function_of_a_shared_name(platform: Platform) -> None:
    a, b = platform.a, platform.b
    name = unique("same")
    a.deploy(name)
    b.deploy(name)
    for account in (a, b):
        client = account.client()
        listed = [f["FunctionArn"] for f in client.list_functions()["Functions"] if f["FunctionName"] == name]
        assert listed == [account.function_arn(name)]
        assert client.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == account.function_arn(
            name
        )
        _, answer = invoke(client, name)
        assert answer == {"deployedBy": account.id, "invokedAs": account.function_arn(name)}
    a_only = unique("mine")
    a.deploy(a_only)
    assert a_only not in [f["FunctionName"] for f in b.client().list_functions()["Functions"]]
    with pytest.raises(ClientError) as missing:
        b.client().get_function(FunctionName=a_only)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Deleting one account's function leaves the other account's function of that name alone.
    a.client().delete_function(FunctionName=name)
    _, answer = invoke(b.client(), name)
    assert answer["deployedBy"] == b.id


def test_another_account_invokes_only_with_the_resource_policy_and_its_own_identity_policy(
    platform: Platform,
) -> None:
    a, b = platform.a, platform.b
    name = unique("shared")
    a.deploy(name)
    arn = a.function_arn(name)
    allowed = _user(
        b,
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}],
        },
    )
    bare = _user(b, None)
    caller = b.client(keys=allowed)
    who = b.client("sts", keys=allowed).get_caller_identity()["Arn"]

    # B's identity policy allows it, but A's function has no resource policy: denied, as AWS says.
    message = _denied(lambda: caller.invoke(FunctionName=arn))
    assert message == (
        f"User: {who} is not authorized to perform: lambda:InvokeFunction on resource: {arn} "
        "because no resource-based policy allows the lambda:InvokeFunction action"
    )
    # Not even B's root may, without A's grant.
    _denied(lambda: b.client().invoke(FunctionName=arn))

    a.client().add_permission(
        FunctionName=name, StatementId="b-invokes", Action="lambda:InvokeFunction", Principal=b.id
    )
    _, answer = invoke(caller, arn)
    assert answer == {"deployedBy": a.id, "invokedAs": arn}  # A's function, in A's account
    _, answer = invoke(b.client(), arn)
    assert answer["deployedBy"] == a.id

    # A's grant alone is not enough for a B user whose own policies do not allow it.
    who_bare = b.client("sts", keys=bare).get_caller_identity()["Arn"]
    message = _denied(lambda: b.client(keys=bare).invoke(FunctionName=arn))
    assert message == (
        f"User: {who_bare} is not authorized to perform: lambda:InvokeFunction on resource: {arn} "
        "because no identity-based policy allows the lambda:InvokeFunction action"
    )
    # The grant is for invoking: reading A's function stays A's.
    _denied(lambda: caller.get_function(FunctionName=arn))
    # B's functions list is B's alone, whatever B may invoke.
    assert arn not in [f["FunctionArn"] for f in b.client().list_functions()["Functions"]]


def test_networks_are_each_accounts_own(platform: Platform) -> None:
    a, b = platform.a, platform.b
    ec2_a, ec2_b = a.client("ec2"), b.client("ec2")
    vpc = ec2_a.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2_a.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = ec2_a.create_security_group(GroupName="web", Description="d", VpcId=vpc)["GroupId"]
    assert vpc not in [v["VpcId"] for v in ec2_b.describe_vpcs()["Vpcs"]]
    assert subnet not in [s["SubnetId"] for s in ec2_b.describe_subnets()["Subnets"]]
    # B may name its own group "web" in its own VPC, and cannot attach a function to A's network.
    own_vpc = ec2_b.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    ec2_b.create_security_group(GroupName="web", Description="d", VpcId=own_vpc)
    with pytest.raises(ClientError) as refused:
        b.client().create_function(
            FunctionName=unique("in-a-vpc"),
            Runtime="python3.12",
            Role=b.role,
            Handler="handler.handler",
            Code={"ZipFile": make_zip({"handler.py": SOURCE % b.id})},
            VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]},
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as missing:
        ec2_b.delete_vpc(VpcId=vpc)
    assert missing.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    assert vpc in [v["VpcId"] for v in ec2_a.describe_vpcs()["Vpcs"]]


def test_another_accounts_layer_is_used_once_its_owner_grants_it(platform: Platform) -> None:
    a, b = platform.a, platform.b
    layer_name = unique("lib")
    published = a.client().publish_layer_version(
        LayerName=layer_name, Content={"ZipFile": make_zip({"python/owner_lib.py": f"OWNER = '{a.id}'\n"})}
    )
    layer_arn = published["LayerVersionArn"]
    assert layer_arn.startswith(f"arn:aws:lambda:{REGION}:{a.id}:layer:{layer_name}:")
    source = "import owner_lib\ndef handler(event, context):\n    return {'layerOwner': owner_lib.OWNER}\n"
    name = unique("uses-layer")
    params = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": b.role,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip({"handler.py": source})},
        "Layers": [layer_arn],
    }
    who = b.client("sts").get_caller_identity()["Arn"]
    message = _denied(lambda: b.client().create_function(**params))
    assert message == (
        f"User: {who} is not authorized to perform: lambda:GetLayerVersion on resource: {layer_arn} "
        "because no resource-based policy allows the lambda:GetLayerVersion action"
    )
    a.client().add_layer_version_permission(
        LayerName=layer_name,
        VersionNumber=published["Version"],
        StatementId="b-uses",
        Action="lambda:GetLayerVersion",
        Principal=b.id,
    )
    assert b.client().get_layer_version_by_arn(Arn=layer_arn)["LayerVersionArn"] == layer_arn
    deploy_python(b.client(), name, source, Role=b.role, Layers=[layer_arn])
    _, answer = invoke(b.client(), name)
    assert answer == {"layerOwner": a.id}
    # B's own layers are B's: A's layer is not among them.
    assert layer_name not in [layer["LayerName"] for layer in b.client().list_layers()["Layers"]]


def test_an_event_invocation_a_schedule_and_a_mapping_of_an_account_run_in_that_account(
    platform: Platform,
) -> None:
    a, b = platform.a, platform.b
    name = unique("background")
    a.deploy(name)  # a function of the same name in the other account, which must not run
    b.deploy(name)
    b_arn = b.function_arn(name)

    b.client().invoke(FunctionName=name, InvocationType="Event", Payload=b'{"via": "event"}')
    eventually(lambda: _runs(platform.server, name, b_arn) >= 1, timeout=30)

    scheduler = b.client("scheduler")
    schedule = unique("tick")
    scheduler.create_schedule(
        Name=schedule,
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": b_arn, "RoleArn": f"arn:aws:iam::{b.id}:role/scheduler"},
    )
    try:
        before = _runs(platform.server, name, b_arn)
        eventually(lambda: _runs(platform.server, name, b_arn) > before, timeout=30)
    finally:
        scheduler.delete_schedule(Name=schedule)

    sqs = make_client(platform.sqs_endpoint, REGION)
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client = b.client()
    # The poller acts with the function's execution role (B's), which must be allowed to read the queue.
    b.client("iam").attach_role_policy(
        RoleName="exec", PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
    )
    mapping = client.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=1)
    try:
        assert mapping["EventSourceMappingArn"].startswith(f"arn:aws:lambda:{REGION}:{b.id}:")
        assert mapping["FunctionArn"] == b_arn
        assert mapping["UUID"] not in [
            m["UUID"] for m in a.client().list_event_source_mappings()["EventSourceMappings"]
        ]
        eventually(
            lambda: client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled", timeout=30
        )
        before = _runs(platform.server, name, b_arn)
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        eventually(lambda: _runs(platform.server, name, b_arn) > before, timeout=30)
    finally:
        client.delete_event_source_mapping(UUID=mapping["UUID"])
        time.sleep(0.5)
        sqs.delete_queue(QueueUrl=url)
    # A's function of that name never ran.
    assert _runs(platform.server, name, a.function_arn(name)) == 0
