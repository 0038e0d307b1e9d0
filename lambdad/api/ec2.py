"""EC2's network operations (botocore's ``ec2`` model), the subset Lambda users need: VPCs, subnets,
security groups and their rules. Handlers are thin: the checks and errors are ``services.networks``'."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from lambdad.api.dispatch import ServiceApi
from lambdad.api.operations import Call, OperationTable
from lambdad.errors import Ec2DryRun, Ec2Error, Ec2InternalError, LambdaError, RequestLimitExceeded
from lambdad.services.networks import Group
from lambdad.store.networks import GroupRecord, RuleRecord, SubnetRecord, VpcRecord

table = OperationTable()


def ec2_api() -> ServiceApi:
    """The EC2 operations, ready for ``AwsApi`` (EC2's errors: InternalError, RequestLimitExceeded)."""
    return ServiceApi(
        "ec2",
        table,
        internal_error=Ec2InternalError,
        throttled=_throttled,
        message_key="Message",
        fault_in_body=False,
    )


def _throttled() -> LambdaError:
    return RequestLimitExceeded("Request limit exceeded.")


def _dry_run(call: Call) -> None:
    """EC2's DryRun: every check made, nothing done (lambdad has no permissions to check yet)."""
    if call.params.get("DryRun"):
        raise Ec2DryRun("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")


# --- VPCs ---------------------------------------------------------------------------------------------


@table.operation("CreateVpc")
def create_vpc(call: Call) -> dict[str, Any]:
    _dry_run(call)
    return {"Vpc": vpc(call, call.services.networks.create_vpc(call.scope, call.params))}


@table.operation("DescribeVpcs")
def describe_vpcs(call: Call) -> dict[str, Any]:
    found = call.services.networks.describe_vpcs(call.scope, call.params)
    items, token = _page(found, call.params)
    return {"Vpcs": [vpc(call, v) for v in items], "NextToken": token}


@table.operation("DeleteVpc")
def delete_vpc(call: Call) -> dict[str, Any]:
    _dry_run(call)
    call.services.networks.delete_vpc(call.scope, call.params["VpcId"])
    return {}


# --- subnets ------------------------------------------------------------------------------------------


@table.operation("CreateSubnet")
def create_subnet(call: Call) -> dict[str, Any]:
    _dry_run(call)
    return {"Subnet": subnet(call, call.services.networks.create_subnet(call.scope, call.params))}


@table.operation("DescribeSubnets")
def describe_subnets(call: Call) -> dict[str, Any]:
    found = call.services.networks.describe_subnets(call.scope, call.params)
    items, token = _page(found, call.params)
    return {"Subnets": [subnet(call, s) for s in items], "NextToken": token}


@table.operation("DeleteSubnet")
def delete_subnet(call: Call) -> dict[str, Any]:
    _dry_run(call)
    call.services.networks.delete_subnet(call.scope, call.params["SubnetId"])
    return {}


# --- security groups ----------------------------------------------------------------------------------


@table.operation("CreateSecurityGroup")
def create_security_group(call: Call) -> dict[str, Any]:
    _dry_run(call)
    group = call.services.networks.create_group(call.scope, call.params)
    answer: dict[str, Any] = {"GroupId": group.group_id, "SecurityGroupArn": _group_arn(call, group)}
    if group.tags:
        answer["Tags"] = _tags(group.tags)
    return answer


@table.operation("DescribeSecurityGroups")
def describe_security_groups(call: Call) -> dict[str, Any]:
    found = call.services.networks.describe_groups(call.scope, call.params)
    items, token = _page(found, call.params)
    return {"SecurityGroups": [security_group(call, g) for g in items], "NextToken": token}


@table.operation("DeleteSecurityGroup")
def delete_security_group(call: Call) -> dict[str, Any]:
    _dry_run(call)
    group = call.services.networks.delete_group(call.scope, call.params)
    return {"Return": True, "GroupId": group.group_id}


# --- rules --------------------------------------------------------------------------------------------


@table.operation("AuthorizeSecurityGroupEgress")
def authorize_egress(call: Call) -> dict[str, Any]:
    _dry_run(call)
    added = call.services.networks.authorize(call.scope, call.params, egress=True)
    return {"Return": True, "SecurityGroupRules": [rule(call, r) for r in added]}


@table.operation("AuthorizeSecurityGroupIngress")
def authorize_ingress(call: Call) -> dict[str, Any]:
    _dry_run(call)
    added = call.services.networks.authorize(call.scope, call.params, egress=False)
    return {"Return": True, "SecurityGroupRules": [rule(call, r) for r in added]}


@table.operation("RevokeSecurityGroupEgress")
def revoke_egress(call: Call) -> dict[str, Any]:
    _dry_run(call)
    return _revoked(call, *call.services.networks.revoke(call.scope, call.params, egress=True))


@table.operation("RevokeSecurityGroupIngress")
def revoke_ingress(call: Call) -> dict[str, Any]:
    _dry_run(call)
    return _revoked(call, *call.services.networks.revoke(call.scope, call.params, egress=False))


@table.operation("DescribeSecurityGroupRules")
def describe_security_group_rules(call: Call) -> dict[str, Any]:
    found = call.services.networks.describe_rules(call.scope, call.params)
    items, token = _page(found, call.params)
    return {"SecurityGroupRules": [rule(call, r) for r in items], "NextToken": token}


def _revoked(call: Call, removed: list[RuleRecord], unknown: list[RuleRecord]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "Return": True,
        "RevokedSecurityGroupRules": [
            {
                "SecurityGroupRuleId": r.rule_id,
                "GroupId": r.group_id,
                "IsEgress": r.is_egress,
                "IpProtocol": r.ip_protocol,
                "FromPort": r.from_port,
                "ToPort": r.to_port,
                **({"CidrIpv4": r.cidr_ipv4} if r.cidr_ipv4 else {}),
                **({"ReferencedGroupId": r.referenced_group_id} if r.referenced_group_id else {}),
                **({"Description": r.description} if r.description else {}),
            }
            for r in removed
        ],
    }
    if unknown:
        answer["UnknownIpPermissions"] = permissions(call, unknown)
    return answer


# --- shapes -------------------------------------------------------------------------------------------


def vpc(call: Call, record: VpcRecord) -> dict[str, Any]:
    """A ``Vpc`` shape."""
    return {
        "VpcId": record.vpc_id,
        "OwnerId": call.scope.account,
        "State": "available",
        "CidrBlock": record.cidr_block,
        "CidrBlockAssociationSet": [
            {
                "AssociationId": "vpc-cidr-assoc-" + record.vpc_id[4:],
                "CidrBlock": record.cidr_block,
                "CidrBlockState": {"State": "associated"},
            }
        ],
        "DhcpOptionsId": "default",
        "InstanceTenancy": "default",
        "IsDefault": False,
        "Tags": _tags(record.tags),
    }


def subnet(call: Call, record: SubnetRecord) -> dict[str, Any]:
    """A ``Subnet`` shape (AWS keeps five addresses of every subnet for itself)."""
    size = 2 ** (32 - int(record.cidr_block.split("/")[1]))
    region, zone = call.scope.region, record.availability_zone
    return {
        "SubnetId": record.subnet_id,
        "SubnetArn": f"arn:aws:ec2:{region}:{call.scope.account}:subnet/{record.subnet_id}",
        "VpcId": record.vpc_id,
        "OwnerId": call.scope.account,
        "State": "available",
        "CidrBlock": record.cidr_block,
        "AvailableIpAddressCount": size - 5,
        "AvailabilityZone": zone,
        "AvailabilityZoneId": f"{_zone_prefix(region)}-az{ord(zone[-1]) - ord('a') + 1}",
        "DefaultForAz": False,
        "MapPublicIpOnLaunch": False,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "Tags": _tags(record.tags),
    }


def security_group(call: Call, group: Group) -> dict[str, Any]:
    """A ``SecurityGroup`` shape: its rules grouped into IpPermissions as EC2 groups them."""
    record = group.record
    return {
        "GroupId": record.group_id,
        "GroupName": record.group_name,
        "Description": record.description,
        "VpcId": record.vpc_id,
        "OwnerId": call.scope.account,
        "SecurityGroupArn": _group_arn(call, record),
        "IpPermissions": permissions(call, [r for r in group.rules if not r.is_egress]),
        "IpPermissionsEgress": permissions(call, [r for r in group.rules if r.is_egress]),
        "Tags": _tags(record.tags),
    }


def permissions(call: Call, rules: Sequence[RuleRecord]) -> list[dict[str, Any]]:
    """``IpPermission`` shapes: one per protocol and port range, with its CIDRs and groups."""

    def key(r: RuleRecord) -> tuple[str, int, int]:
        return (r.ip_protocol, r.from_port, r.to_port)

    answer = []
    for (protocol, from_port, to_port), same in groupby(sorted(rules, key=key), key=key):
        members = list(same)
        permission: dict[str, Any] = {"IpProtocol": protocol}
        if protocol != "-1":
            permission.update(FromPort=from_port, ToPort=to_port)
        permission["IpRanges"] = [
            {"CidrIp": r.cidr_ipv4, **({"Description": r.description} if r.description else {})}
            for r in members
            if r.cidr_ipv4
        ]
        permission["Ipv6Ranges"] = []
        permission["PrefixListIds"] = []
        permission["UserIdGroupPairs"] = [
            {
                "GroupId": r.referenced_group_id,
                "UserId": call.scope.account,
                **({"Description": r.description} if r.description else {}),
            }
            for r in members
            if r.referenced_group_id
        ]
        answer.append(permission)
    return answer


def rule(call: Call, record: RuleRecord) -> dict[str, Any]:
    """A ``SecurityGroupRule`` shape."""
    answer: dict[str, Any] = {
        "SecurityGroupRuleId": record.rule_id,
        "GroupId": record.group_id,
        "GroupOwnerId": call.scope.account,
        "IsEgress": record.is_egress,
        "IpProtocol": record.ip_protocol,
        "FromPort": record.from_port,
        "ToPort": record.to_port,
        "Tags": [],
        "SecurityGroupRuleArn": (
            f"arn:aws:ec2:{call.scope.region}:{call.scope.account}:security-group-rule/{record.rule_id}"
        ),
    }
    if record.cidr_ipv4:
        answer["CidrIpv4"] = record.cidr_ipv4
    if record.referenced_group_id:
        answer["ReferencedGroupInfo"] = {"GroupId": record.referenced_group_id, "UserId": call.scope.account}
    if record.description:
        answer["Description"] = record.description
    return answer


def _group_arn(call: Call, group: GroupRecord) -> str:
    return f"arn:aws:ec2:{call.scope.region}:{call.scope.account}:security-group/{group.group_id}"


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _zone_prefix(region: str) -> str:
    """AWS's zone id prefix: us-east-1 -> use1, eu-west-2 -> euw2."""
    area, direction, number = [*region.split("-"), "", ""][:3]
    return f"{area}{direction[:1]}{number}"


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
    """Describe's pagination: MaxResults at a time, NextToken the offset of the next page."""
    start = 0
    if params.get("NextToken"):
        try:
            start = int(params["NextToken"])
        except ValueError:
            raise Ec2Error("InvalidNextToken", "The token provided is invalid.") from None
    limit = params.get("MaxResults")
    if limit is None:
        return items[start:], None
    if not 5 <= limit <= 1000:
        raise Ec2Error("InvalidParameterValue", f"Value ( {limit} ) for parameter maxResults is invalid.")
    end = start + limit
    return items[start:end], str(end) if end < len(items) else None
