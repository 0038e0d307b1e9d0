"""EC2's networks in the service: AWS's ids, defaults, checks and errors; a function's VpcConfig checked
against them (AWS's messages from tests/aws-recordings) and its egress policy; rule changes announced
to the functions they concern."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lambdad.errors import Ec2Error, InvalidParameterValueException
from lambdad.models import Scope
from lambdad.sandbox import EgressRule
from lambdad.services.lookup import FunctionLookup
from lambdad.services.networks import NetworkService
from tests.services.test_functions import SCOPE, Parts, create_params


@pytest.fixture
def parts(tmp_path: Path) -> Any:
    built = Parts(tmp_path)
    yield built
    built.close()


def _net(parts: Parts) -> NetworkService:
    return parts.service.networks


def _code(excinfo: pytest.ExceptionInfo[Ec2Error]) -> str:
    return excinfo.value.code


def _vpc_with_subnet_and_group(parts: Parts) -> tuple[str, str, str]:
    net = _net(parts)
    vpc = net.create_vpc(SCOPE, {"CidrBlock": "10.0.0.0/16"})
    subnet = net.create_subnet(SCOPE, {"VpcId": vpc.vpc_id, "CidrBlock": "10.0.1.0/24"})
    group = net.create_group(SCOPE, {"GroupName": "fn", "Description": "d", "VpcId": vpc.vpc_id})
    return vpc.vpc_id, subnet.subnet_id, group.group_id


def test_ids_default_group_and_its_rules(parts: Parts) -> None:
    net = _net(parts)
    vpc = net.create_vpc(SCOPE, {"CidrBlock": "10.0.0.0/16"})
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", vpc.vpc_id)
    [default] = net.describe_groups(SCOPE, {"Filters": [{"Name": "vpc-id", "Values": [vpc.vpc_id]}]})
    assert default.record.group_name == "default"
    assert re.fullmatch(r"sg-[0-9a-f]{17}", default.record.group_id)
    # AWS's default rules: everything in from the group's own members, everything out.
    kinds = {(r.is_egress, r.ip_protocol, r.cidr_ipv4, r.referenced_group_id) for r in default.rules}
    assert kinds == {(False, "-1", None, default.record.group_id), (True, "-1", "0.0.0.0/0", None)}
    assert all(re.fullmatch(r"sgr-[0-9a-f]{17}", r.rule_id) for r in default.rules)
    with pytest.raises(Ec2Error) as excinfo:
        net.delete_group(SCOPE, {"GroupId": default.record.group_id})
    assert _code(excinfo) == "CannotDelete"


def test_vpc_and_subnet_checks(parts: Parts) -> None:
    net = _net(parts)
    for cidr, code in (("10.0.0.0/8", "InvalidVpc.Range"), ("nonsense", "InvalidParameterValue")):
        with pytest.raises(Ec2Error) as excinfo:
            net.create_vpc(SCOPE, {"CidrBlock": cidr})
        assert _code(excinfo) == code
    vpc = net.create_vpc(SCOPE, {"CidrBlock": "10.0.0.0/16"})
    net.create_subnet(
        SCOPE, {"VpcId": vpc.vpc_id, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1b"}
    )
    cases = [
        ({"CidrBlock": "10.1.0.0/24"}, "InvalidSubnet.Range", "The CIDR '10.1.0.0/24' is invalid."),
        ({"CidrBlock": "10.0.1.128/25"}, "InvalidSubnet.Conflict", "conflicts with another subnet"),
        (
            {"CidrBlock": "10.0.2.0/24", "AvailabilityZone": "us-west-2a"},
            "InvalidParameterValue",
            "us-east-1a",
        ),
        (
            {"CidrBlock": "10.0.2.0/24", "VpcId": "vpc-00000000000000000"},
            "InvalidVpcID.NotFound",
            "does not exist",
        ),
    ]
    for params, code, words in cases:
        with pytest.raises(Ec2Error) as excinfo:
            net.create_subnet(SCOPE, {"VpcId": vpc.vpc_id, **params})
        assert (_code(excinfo), words in excinfo.value.message) == (code, True), excinfo.value.message
    with pytest.raises(Ec2Error) as excinfo:
        net.delete_vpc(SCOPE, vpc.vpc_id)
    assert _code(excinfo) == "DependencyViolation"


def test_rules_duplicates_revokes_and_filters(parts: Parts) -> None:
    net = _net(parts)
    _, _, group_id = _vpc_with_subnet_and_group(parts)
    web = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "198.18.0.0/15"}]}
    [added] = net.authorize(SCOPE, {"GroupId": group_id, "IpPermissions": [web]}, egress=True)
    assert (added.ip_protocol, added.from_port, added.to_port, added.cidr_ipv4) == (
        "tcp",
        443,
        443,
        "198.18.0.0/15",
    )
    with pytest.raises(Ec2Error) as excinfo:
        net.authorize(
            SCOPE, {"GroupId": group_id, "IpPermissions": [{**web, "IpProtocol": "6"}]}, egress=True
        )
    assert _code(excinfo) == "InvalidPermission.Duplicate"
    assert excinfo.value.message == (
        'the specified rule "peer: 198.18.0.0/15, TCP, from port: 443, to port: 443, ALLOW" already exists'
    )
    bad = [
        ({**web, "FromPort": 500, "ToPort": 400}, "InvalidParameterValue"),
        ({**web, "IpRanges": [{"CidrIp": "10.0.0.300/24"}]}, "InvalidParameterValue"),
        ({**web, "IpProtocol": "tcpx"}, "InvalidParameterValue"),
        (
            {**web, "IpRanges": [], "UserIdGroupPairs": [{"GroupId": "sg-00000000000000000"}]},
            "InvalidGroup.NotFound",
        ),
    ]
    for permission, code in bad:
        with pytest.raises(Ec2Error) as excinfo:
            net.authorize(SCOPE, {"GroupId": group_id, "IpPermissions": [permission]}, egress=True)
        assert _code(excinfo) == code, permission
    rules = net.describe_rules(SCOPE, {"Filters": [{"Name": "group-id", "Values": [group_id]}]})
    assert len(rules) == 2  # the new group's allow-all egress, and ours
    removed, unknown = net.revoke(SCOPE, {"GroupId": group_id, "IpPermissions": [web]}, egress=True)
    assert [r.rule_id for r in removed] == [added.rule_id] and unknown == []
    with pytest.raises(Ec2Error) as excinfo:
        net.revoke(SCOPE, {"GroupId": group_id, "IpPermissions": [web]}, egress=True)
    assert _code(excinfo) == "InvalidPermission.NotFound"
    assert [
        g.record.group_name
        for g in net.describe_groups(SCOPE, {"Filters": [{"Name": "group-name", "Values": ["f*"]}]})
    ] == ["fn"]
    with pytest.raises(Ec2Error) as excinfo:
        net.describe_groups(SCOPE, {"GroupIds": ["sg-00000000000000000"]})
    assert (_code(excinfo), excinfo.value.message) == (
        "InvalidGroup.NotFound",
        "The security group 'sg-00000000000000000' does not exist",
    )
    with pytest.raises(Ec2Error) as excinfo:
        net.describe_groups(SCOPE, {"Filters": [{"Name": "colour", "Values": ["red"]}]})
    assert _code(excinfo) == "InvalidParameterValue"


def test_vpc_config_is_checked_and_answered_with_its_vpc(parts: Parts) -> None:
    vpc_id, subnet_id, group_id = _vpc_with_subnet_and_group(parts)
    with pytest.raises(InvalidParameterValueException) as excinfo:
        parts.service.create(
            SCOPE,
            create_params(
                "f", VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": [group_id]}
            ),
        )
    assert excinfo.value.message == (
        "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error Message: "
        "The subnet ID 'subnet-0123456789abcdef0' does not exist"
    )
    with pytest.raises(InvalidParameterValueException) as excinfo:
        parts.service.create(
            SCOPE,
            create_params(
                "f", VpcConfig={"SubnetIds": [subnet_id], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
            ),
        )
    assert excinfo.value.message == (
        "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
        "EC2 Error Message: The security group 'sg-0123456789abcdef0' does not exist"
    )
    other_vpc = parts.service.networks.create_vpc(SCOPE, {"CidrBlock": "10.9.0.0/16"})
    elsewhere = parts.service.networks.create_group(
        SCOPE, {"GroupName": "x", "Description": "d", "VpcId": other_vpc.vpc_id}
    )
    for wrong, message in (
        ({"SubnetIds": [subnet_id]}, "SubnetIds and SecurityIds must coexist or be both empty list."),
        (
            {"SubnetIds": [subnet_id], "SecurityGroupIds": [elsewhere.group_id]},
            "Security Groups are required to be in the same VPC.",
        ),
    ):
        with pytest.raises(InvalidParameterValueException) as excinfo:
            parts.service.create(SCOPE, create_params("f", VpcConfig=wrong))
        assert excinfo.value.message == message
    config = {"SubnetIds": [subnet_id], "SecurityGroupIds": [group_id]}
    created = parts.service.create(SCOPE, create_params("f", VpcConfig=config))
    parts.activator.submit(SCOPE, "f").result(timeout=5)  # Active: updates are allowed
    assert created.extra["VpcConfig"] == {**config, "VpcId": vpc_id, "Ipv6AllowedForDualStack": False}
    # A group or subnet in use cannot go.
    with pytest.raises(Ec2Error) as excinfo:
        parts.service.networks.delete_group(SCOPE, {"GroupId": group_id})
    assert _code(excinfo) == "DependencyViolation"
    with pytest.raises(Ec2Error) as excinfo:
        parts.service.networks.delete_subnet(SCOPE, subnet_id)
    assert _code(excinfo) == "DependencyViolation"
    removed = parts.service.update_configuration(
        SCOPE, {"FunctionName": "f", "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}
    )
    assert removed.extra["VpcConfig"]["VpcId"] == ""
    parts.service.networks.delete_group(SCOPE, {"GroupId": group_id})


def test_egress_policy_follows_the_rules_and_changes_are_announced(parts: Parts) -> None:
    _, subnet_id, group_id = _vpc_with_subnet_and_group(parts)
    heard: list[tuple[Scope, str, str]] = []
    parts.changes.subscribe(lambda *change: heard.append(change))
    lookup = FunctionLookup(parts.database, parts.changes)
    config = {"SubnetIds": [subnet_id], "SecurityGroupIds": [group_id]}
    parts.service.create(SCOPE, create_params("in-vpc", VpcConfig=config))
    parts.service.create(SCOPE, create_params("outside"))
    for name in ("in-vpc", "outside"):  # settled: the activator's own notices are over
        parts.activator.submit(SCOPE, name).result(timeout=5)
    assert lookup.load(SCOPE, "outside", None).egress is None
    assert lookup.load(SCOPE, "in-vpc", None).egress == (EgressRule("0.0.0.0/0", "-1", -1, -1),)
    net = parts.service.networks
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    heard.clear()
    net.revoke(SCOPE, {"GroupId": group_id, "IpPermissions": [everything]}, egress=True)
    net.authorize(
        SCOPE,
        {
            "GroupId": group_id,
            "IpPermissions": [
                {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "1.1.1.1/32"}]}
            ],
        },
        egress=True,
    )
    # Ingress rules are recorded, and change nothing a function does.
    net.authorize(SCOPE, {"GroupId": group_id, "IpPermissions": [everything]}, egress=False)
    # Its environments drain, provisioned ones included (the provisioner reconciles on "provisioned").
    assert heard == [(SCOPE, "in-vpc", "function"), (SCOPE, "in-vpc", "provisioned")] * 2
    assert lookup.load(SCOPE, "in-vpc", None).egress == (EgressRule("1.1.1.1/32", "udp", 53, 53),)
