"""VPCs, subnets and security groups with boto3's ``ec2`` client, and a function attached to them with
boto3's ``lambda`` client: its VpcConfig is checked and answered as AWS answers it, and its security
groups' egress rules decide what it may connect to (listeners in a network namespace of the test's own,
tests/private_network.py). A rule change reaches the function's next invocations (its environments of
the old rules are drained)."""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import deploy_python, invoke, start_server, unique, wait_updated
from tests.private_network import PROBE, PrivateListeners
from tests.support import CREDENTIALS, Server

pytestmark = pytest.mark.timeout(240)

HANDLER = PROBE + (
    "\ndef handler(event, context):\n"
    "    return {f'{h}:{p}': probe([(h, p)])[h] for h, p in event['targets']}\n"
)
EVERYTHING = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
#: Connects to one target every 0.3 s for a while: (wall-clock time it began, outcome) of each attempt.
PROBING = """
import errno, socket, time
def attempt(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            return 'ok ' + conn.recv(16).decode()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, 'timeout') if exc.errno else 'timeout'
def handler(event, context):
    host, port = event['target']
    seen, start = [], time.monotonic()
    while time.monotonic() - start < event['seconds']:
        seen.append((time.time(), attempt(host, port)))
        time.sleep(0.3)
    return seen
"""


@pytest.fixture(scope="module")
def listeners() -> Iterator[PrivateListeners]:
    with PrivateListeners() as made:
        yield made


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("lambdad"))
    yield running
    running.stop(timeout=60)
    listed = subprocess.run(
        ["nft", "list", "table", "inet", "lambdad0_egress"], capture_output=True, text=True
    )
    # Every sandbox's chain went with it (the table goes with the bridge, when no server uses it): a
    # chain left is another server's (tests run side by side), so its address is still leased.
    leases = Path("/run/lambdad/lambdad0.leases")
    for chain in re.findall(r"chain sandbox_(\d+_\d+_\d+_\d+)", listed.stdout):
        address = chain.replace("_", ".")
        assert (leases / address).exists(), f"the chain of {address} outlived its sandbox: {listed.stdout}"


def _ec2(server: Server) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **CREDENTIALS,
    )


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def _network(ec2: Any) -> tuple[str, str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    group = ec2.create_security_group(GroupName=unique("fn"), Description="function", VpcId=vpc)["GroupId"]
    return vpc, subnet["SubnetId"], group


def test_networks_are_made_described_and_deleted_as_on_ec2(server: Server) -> None:
    ec2 = _ec2(server)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=[_name("vpc", "team")])["Vpc"]
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", vpc["VpcId"]) and vpc["CidrBlock"] == "10.1.0.0/16"
    described = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["team"]}])["Vpcs"]
    assert [v["VpcId"] for v in described] == [vpc["VpcId"]]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.1.2.0/24", AvailabilityZone="us-east-1c")[
        "Subnet"
    ]
    assert re.fullmatch(r"subnet-[0-9a-f]{17}", subnet["SubnetId"])
    assert (subnet["AvailabilityZone"], subnet["AvailableIpAddressCount"]) == ("us-east-1c", 251)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.1.2.128/25")
    assert _error(excinfo) == (
        "InvalidSubnet.Conflict",
        "The CIDR '10.1.2.128/25' conflicts with another subnet",
    )
    # The VPC's default group, with AWS's default rules.
    [default] = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    assert [p["UserIdGroupPairs"][0]["GroupId"] for p in default["IpPermissions"]] == [default["GroupId"]]
    assert [(p["IpProtocol"], p["IpRanges"]) for p in default["IpPermissionsEgress"]] == [
        ("-1", [{"CidrIp": "0.0.0.0/0"}])
    ]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc["VpcId"])["GroupId"]
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    [added] = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[https])["SecurityGroupRules"]
    assert re.fullmatch(r"sgr-[0-9a-f]{17}", added["SecurityGroupRuleId"]) and not added["IsEgress"]
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[https])
    assert _error(excinfo) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 10.0.0.0/8, TCP, from port: 443, to port: 443, ALLOW" already exists',
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroupRules"
    ]
    assert sorted((r["IsEgress"], r["IpProtocol"]) for r in rules) == [(False, "tcp"), (True, "-1")]
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert _error(excinfo)[0] == "DependencyViolation"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])
    assert _error(excinfo) == (
        "InvalidGroup.NotFound",
        "The security group 'sg-0123456789abcdef0' does not exist",
    )
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])
    assert _error(excinfo) == ("InvalidVpcID.NotFound", f"The vpc ID '{vpc['VpcId']}' does not exist")


def test_vpc_config_is_checked_against_the_networks(server: Server) -> None:
    ec2, client = _ec2(server), server.client(read_timeout=60)
    vpc, subnet, group = _network(ec2)
    name = unique("vpc")
    with pytest.raises(ClientError) as excinfo:
        deploy_python(
            client,
            name,
            HANDLER,
            VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": [group]},
        )
    assert _error(excinfo) == (
        "InvalidParameterValueException",
        "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error Message: "
        "The subnet ID 'subnet-0123456789abcdef0' does not exist",
    )
    with pytest.raises(ClientError) as excinfo:
        deploy_python(
            client,
            name,
            HANDLER,
            VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": ["sg-0123456789abcdef0"]},
        )
    assert _error(excinfo) == (
        "InvalidParameterValueException",
        "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
        "EC2 Error Message: The security group 'sg-0123456789abcdef0' does not exist",
    )
    deploy_python(client, name, HANDLER, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    config = client.get_function_configuration(FunctionName=name)["VpcConfig"]
    assert config == {
        "SubnetIds": [subnet],
        "SecurityGroupIds": [group],
        "VpcId": vpc,
        "Ipv6AllowedForDualStack": False,
    }
    # In use: the group cannot go.
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_security_group(GroupId=group)
    assert _error(excinfo) == ("DependencyViolation", f"resource {group} has a dependent object")
    client.update_function_configuration(
        FunctionName=name, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    wait_updated(client, name)
    assert client.get_function_configuration(FunctionName=name)["VpcConfig"]["VpcId"] == ""
    ec2.delete_security_group(GroupId=group)


def test_egress_rules_decide_what_a_function_reaches(server: Server, listeners: PrivateListeners) -> None:
    ec2, client = _ec2(server), server.client(read_timeout=60)
    other_port = listeners.listen_again()
    public, private, port = listeners.public, listeners.private[0], listeners.port
    targets = [(public, port), (public, other_port), (private, port)]
    _, subnet, group = _network(ec2)
    # Only tcp to one listener's port, instead of the new group's allow-all.
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[EVERYTHING])
    one_port = {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "IpRanges": [{"CidrIp": f"{public}/32"}],
    }
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[one_port])
    attached, outside = unique("in-vpc"), unique("outside")
    deploy_python(client, attached, HANDLER, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    deploy_python(client, outside, HANDLER)

    def reached(name: str) -> dict[str, str]:
        response, outcomes = invoke(client, name, {"targets": targets})
        assert "FunctionError" not in response, outcomes
        return outcomes

    # The control: outside a VPC both public ports answer.
    assert reached(outside) == {
        f"{public}:{port}": "ok priv",
        f"{public}:{other_port}": "ok priv",
        f"{private}:{port}": "ECONNREFUSED",
    }
    assert reached(attached) == {
        f"{public}:{port}": "ok priv",
        f"{public}:{other_port}": "ECONNREFUSED",  # refused at once, by the group
        f"{private}:{port}": "ECONNREFUSED",
    }
    # Revoked: the next invocation runs in an environment of the new rules, and reaches nothing.
    revoked = ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[one_port])
    assert [r["FromPort"] for r in revoked["RevokedSecurityGroupRules"]] == [port]
    assert set(reached(attached).values()) == {"ECONNREFUSED"}
    # Authorized again, for every port of the public listener's address: both answer.
    ec2.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": f"{public}/32"}]}
        ],
    )
    outcomes = reached(attached)
    assert outcomes[f"{public}:{port}"] == outcomes[f"{public}:{other_port}"] == "ok priv", outcomes
    assert outcomes[f"{private}:{port}"] == "ECONNREFUSED", outcomes


def test_a_revoked_rule_applies_to_a_running_invocation(server: Server, listeners: PrivateListeners) -> None:
    ec2, client = _ec2(server), server.client(read_timeout=60)
    _, subnet, group = _network(ec2)
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[EVERYTHING])
    public, port = listeners.public, listeners.port
    one_port = {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "IpRanges": [{"CidrIp": f"{public}/32"}],
    }
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[one_port])
    name = unique("probing")
    deploy_python(
        client, name, PROBING, Timeout=30, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]}
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(invoke, client, name, {"target": [public, port], "seconds": 10})
        time.sleep(4)  # well into the invocation (a cold start included)
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[one_port])
        revoked = time.time()  # the sandbox shares the host's clock
        response, seen = running.result(timeout=60)
    assert "FunctionError" not in response, seen
    # The same invocation, in the same sandbox: reached before the revoke, never after it (AWS applies a
    # security group's changes to running functions): refused at once. (An attempt may time out now and
    # then, with or without a group, when many connections from one sandbox go to one listener.)
    before = [outcome for began, outcome in seen if began < revoked - 0.5]
    after = [outcome for began, outcome in seen if began > revoked + 0.2]
    assert "ok priv" in before and set(before) <= {"ok priv", "timeout"}, seen
    assert after and set(after) <= {"ECONNREFUSED", "timeout"}, seen
    assert set(outcomes for _, outcomes in seen) <= {"ok priv", "ECONNREFUSED", "timeout"}, seen


def _name(resource_type: str, name: str) -> dict[str, Any]:
    return {"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}
