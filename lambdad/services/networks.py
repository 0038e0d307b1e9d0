"""EC2's networks as Lambda users need them: VPCs, subnets, security groups and their rules, with EC2's
checks and errors; a function's VpcConfig checked against them; its security groups' egress rules as its
sandboxes' egress policy.

A rule change reaches running functions by their change notice: every function version attached to the
group gets a new image (its egress rules are part of it) and the running environments of the old rules
get the new ones at once (``Invoker.refresh_egress``); idle ones of $LATEST are drained too, and
provisioned ones made again (the notice is also a PROVISIONED one, which makes the provisioner reconcile
the function).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import Ec2Error, InvalidParameterValueException
from lambdad.models import Scope, utcnow
from lambdad.sandbox import EgressRule
from lambdad.services.changes import CODE_OR_CONFIGURATION, PROVISIONED, FunctionChanges
from lambdad.services.ec2_requests import (
    by_ids,
    cidr_block,
    describe_rule,
    filtered,
    group_filters,
    has_permissions,
    new_id,
    rule_filters,
    rules_from,
    subnet_filters,
    tags_of,
    vpc_filters,
)
from lambdad.store import networks as records
from lambdad.store.database import Database
from lambdad.store.networks import GroupRecord, RuleRecord, SubnetRecord, VpcRecord

#: EC2's quota of rules per security group and direction.
RULES_PER_GROUP = 60


def availability_zones(region: str) -> list[str]:
    """The zones subnets may be made in: us-east-1 has six, the other regions three."""
    return [f"{region}{letter}" for letter in ("abcdef" if region == "us-east-1" else "abc")]


@dataclass(frozen=True)
class Group:
    """A security group and its rules."""

    record: GroupRecord
    rules: tuple[RuleRecord, ...]


class NetworkService:
    """The EC2 operations on networks. Each method acts in one scope (EC2 is regional)."""

    def __init__(self, database: Database, changes: FunctionChanges) -> None:
        self._database = database
        self._changes = changes

    # --- VPCs ----------------------------------------------------------------------------------------

    def create_vpc(self, scope: Scope, params: dict[str, Any]) -> VpcRecord:
        cidr = params.get("CidrBlock")
        if not cidr:
            raise Ec2Error("MissingParameter", "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.")
        network = cidr_block(cidr, "cidrBlock")
        if not 16 <= network.prefixlen <= 28:
            raise Ec2Error("InvalidVpc.Range", f"The CIDR '{cidr}' is invalid.")
        vpc = VpcRecord(new_id("vpc"), str(network), tags_of(params, "vpc"), utcnow())
        # Every VPC comes with its default security group: all traffic in from its own members, all out.
        group = GroupRecord(new_id("sg"), vpc.vpc_id, "default", "default VPC security group", {}, utcnow())
        with self._database.write() as connection:
            records.insert_vpc(connection, scope, vpc)
            records.insert_group(connection, scope, group)
            records.insert_rules(
                connection,
                scope,
                [
                    RuleRecord(new_id("sgr"), group.group_id, False, "-1", -1, -1, None, group.group_id),
                    RuleRecord(new_id("sgr"), group.group_id, True, "-1", -1, -1, "0.0.0.0/0", None),
                ],
            )
        return vpc

    def describe_vpcs(self, scope: Scope, params: dict[str, Any]) -> list[VpcRecord]:
        with self._database.read() as connection:
            found = records.list_vpcs(connection, scope)
        found = by_ids(found, params.get("VpcIds"), lambda v: v.vpc_id, _vpc_missing)
        return filtered(found, params.get("Filters"), vpc_filters)

    def delete_vpc(self, scope: Scope, vpc_id: str) -> None:
        with self._database.write() as connection:
            _vpc(connection, scope, vpc_id)
            subnets = [s for s in records.list_subnets(connection, scope) if s.vpc_id == vpc_id]
            groups = [
                g
                for g in records.list_groups(connection, scope)
                if g.vpc_id == vpc_id and g.group_name != "default"
            ]
            if subnets or groups:
                raise Ec2Error(
                    "DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted."
                )
            records.delete_row(connection, scope, "vpc", vpc_id)

    # --- subnets -------------------------------------------------------------------------------------

    def create_subnet(self, scope: Scope, params: dict[str, Any]) -> SubnetRecord:
        cidr = params.get("CidrBlock")
        if not cidr:
            raise Ec2Error("MissingParameter", "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.")
        network = cidr_block(cidr, "cidrBlock")
        zones = availability_zones(scope.region)
        zone = params.get("AvailabilityZone") or zones[0]
        if zone not in zones:
            raise Ec2Error(
                "InvalidParameterValue",
                f"Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only be "
                f"created in the following availability zones: {', '.join(zones)}.",
            )
        with self._database.write() as connection:
            vpc = _vpc(connection, scope, params["VpcId"])
            if not 16 <= network.prefixlen <= 28 or not network.subnet_of(
                ipaddress.IPv4Network(vpc.cidr_block)
            ):
                raise Ec2Error("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid.")
            for other in records.list_subnets(connection, scope):
                if other.vpc_id == vpc.vpc_id and network.overlaps(ipaddress.IPv4Network(other.cidr_block)):
                    raise Ec2Error(
                        "InvalidSubnet.Conflict", f"The CIDR '{cidr}' conflicts with another subnet"
                    )
            subnet = SubnetRecord(
                new_id("subnet"), vpc.vpc_id, str(network), zone, tags_of(params, "subnet"), utcnow()
            )
            records.insert_subnet(connection, scope, subnet)
        return subnet

    def describe_subnets(self, scope: Scope, params: dict[str, Any]) -> list[SubnetRecord]:
        with self._database.read() as connection:
            found = records.list_subnets(connection, scope)
        found = by_ids(found, params.get("SubnetIds"), lambda s: s.subnet_id, _subnet_missing)
        return filtered(found, params.get("Filters"), subnet_filters)

    def delete_subnet(self, scope: Scope, subnet_id: str) -> None:
        with self._database.write() as connection:
            if not any(s.subnet_id == subnet_id for s in records.list_subnets(connection, scope)):
                raise _subnet_missing(subnet_id)
            if any(subnet_id in a.subnet_ids for a in records.vpc_attachments(connection, scope)):
                # A function's network interfaces live in it (AWS: until Lambda releases them).
                raise Ec2Error(
                    "DependencyViolation", f"The subnet '{subnet_id}' has dependencies and cannot be deleted."
                )
            records.delete_row(connection, scope, "subnet", subnet_id)

    # --- security groups -----------------------------------------------------------------------------

    def create_group(self, scope: Scope, params: dict[str, Any]) -> GroupRecord:
        name, vpc_id = params["GroupName"], params.get("VpcId")
        if not vpc_id:
            raise Ec2Error("VPCIdNotSpecified", "No default VPC for this user")
        if name.lower().startswith("sg-"):
            raise Ec2Error("InvalidParameterValue", "Group names may not be in the format sg-*")
        with self._database.write() as connection:
            _vpc(connection, scope, vpc_id)
            if any(
                g.vpc_id == vpc_id and g.group_name == name for g in records.list_groups(connection, scope)
            ):
                raise Ec2Error(
                    "InvalidGroup.Duplicate", f"The security group '{name}' already exists for VPC '{vpc_id}'"
                )
            group = GroupRecord(
                new_id("sg"), vpc_id, name, params["Description"], tags_of(params, "security-group"), utcnow()
            )
            records.insert_group(connection, scope, group)
            # A new group may open every connection out, as on AWS; nothing in.
            rule = RuleRecord(new_id("sgr"), group.group_id, True, "-1", -1, -1, "0.0.0.0/0", None)
            records.insert_rules(connection, scope, [rule])
        return group

    def describe_groups(self, scope: Scope, params: dict[str, Any]) -> list[Group]:
        with self._database.read() as connection:
            groups = records.list_groups(connection, scope)
            rules = records.list_rules(connection, scope)
        groups = by_ids(groups, params.get("GroupIds"), lambda g: g.group_id, _group_missing)
        names = params.get("GroupNames")
        if names:
            known = {g.group_name for g in groups}
            for name in names:
                if name not in known:
                    raise Ec2Error("InvalidGroup.NotFound", f"The security group '{name}' does not exist")
            groups = [g for g in groups if g.group_name in names]
        groups = filtered(groups, params.get("Filters"), group_filters)
        return [Group(g, tuple(r for r in rules if r.group_id == g.group_id)) for g in groups]

    def delete_group(self, scope: Scope, params: dict[str, Any]) -> GroupRecord:
        with self._database.write() as connection:
            group = _group(connection, scope, params.get("GroupId"), params.get("GroupName"))
            if group.group_name == "default":
                raise Ec2Error(
                    "CannotDelete",
                    f'the specified group: "{group.group_id}" name: "default" cannot be deleted by a user',
                )
            if any(group.group_id in a.group_ids for a in records.vpc_attachments(connection, scope)):
                raise Ec2Error("DependencyViolation", f"resource {group.group_id} has a dependent object")
            referencing = [
                r for r in records.list_rules(connection, scope) if r.referenced_group_id == group.group_id
            ]
            if any(r.group_id != group.group_id for r in referencing):
                raise Ec2Error("DependencyViolation", f"resource {group.group_id} has a dependent object")
            records.delete_row(connection, scope, "group", group.group_id)
        return group

    # --- rules ---------------------------------------------------------------------------------------

    def authorize(self, scope: Scope, params: dict[str, Any], *, egress: bool) -> list[RuleRecord]:
        """Authorize{Egress,Ingress}: the rules added. A rule that exists already fails the whole call."""
        with self._database.write() as connection:
            group = _group(connection, scope, params.get("GroupId"), params.get("GroupName"))
            wanted = rules_from(params, group.group_id, egress)
            known = {g.group_id for g in records.list_groups(connection, scope)}
            for rule in wanted:
                if rule.referenced_group_id and rule.referenced_group_id not in known:
                    raise _group_missing(rule.referenced_group_id)
            existing = [
                r for r in records.list_rules(connection, scope, [group.group_id]) if r.is_egress == egress
            ]
            seen = {r.permission for r in existing}
            for rule in wanted:
                if rule.permission in seen:
                    raise Ec2Error(
                        "InvalidPermission.Duplicate",
                        f'the specified rule "{describe_rule(rule)}" already exists',
                    )
                seen.add(rule.permission)
            if len(existing) + len(wanted) > RULES_PER_GROUP:
                raise Ec2Error(
                    "RulesPerSecurityGroupLimitExceeded",
                    "The maximum number of rules per security group has been reached.",
                )
            records.insert_rules(connection, scope, wanted)
            users = _users(connection, scope, group.group_id) if egress else set()
        self._notify(scope, users)
        return wanted

    def revoke(
        self, scope: Scope, params: dict[str, Any], *, egress: bool
    ) -> tuple[list[RuleRecord], list[RuleRecord]]:
        """Revoke{Egress,Ingress}: (the rules removed, the permissions asked for that matched none). Nothing
        matched at all is EC2's InvalidPermission.NotFound."""
        with self._database.write() as connection:
            group = _group(connection, scope, params.get("GroupId"), params.get("GroupName"))
            existing = [
                r for r in records.list_rules(connection, scope, [group.group_id]) if r.is_egress == egress
            ]
            removed: list[RuleRecord] = []
            for rule_id in params.get("SecurityGroupRuleIds") or []:
                match = [r for r in existing if r.rule_id == rule_id]
                if not match:
                    raise Ec2Error(
                        "InvalidSecurityGroupRuleId.NotFound",
                        f"The security group rule ID '{rule_id}' does not exist",
                    )
                removed += match
            unknown = []
            for asked in rules_from(params, group.group_id, egress) if has_permissions(params) else []:
                match = [r for r in existing if r.permission == asked.permission]
                removed += match
                if not match:
                    unknown.append(asked)
            if not removed:
                raise Ec2Error(
                    "InvalidPermission.NotFound", "The specified rule does not exist in this security group."
                )
            records.delete_rules(connection, scope, {r.rule_id for r in removed})
            users = _users(connection, scope, group.group_id) if egress else set()
        self._notify(scope, users)
        return removed, unknown

    def describe_rules(self, scope: Scope, params: dict[str, Any]) -> list[RuleRecord]:
        with self._database.read() as connection:
            rules = records.list_rules(connection, scope)
        rules = by_ids(rules, params.get("SecurityGroupRuleIds"), lambda r: r.rule_id, _rule_missing)
        return filtered(rules, params.get("Filters"), rule_filters)

    def _notify(self, scope: Scope, function_names: Iterable[str]) -> None:
        for name in sorted(function_names):
            self._changes.notify(scope, name, CODE_OR_CONFIGURATION)
            self._changes.notify(scope, name, PROVISIONED)


# --- what Lambda asks of the networks -----------------------------------------------------------------


def check_vpc_config(connection: Connection, scope: Scope, config: dict[str, Any]) -> dict[str, Any]:
    """A function's VpcConfig as AWS answers it (``VpcId`` filled in), once its subnets and security groups
    are found in one VPC; AWS's InvalidParameterValueException (quoting EC2's error) otherwise."""
    subnet_ids, group_ids = config.get("SubnetIds") or [], config.get("SecurityGroupIds") or []
    if not subnet_ids and not group_ids:
        return {**config, "SubnetIds": [], "SecurityGroupIds": [], "VpcId": ""}
    if not subnet_ids or not group_ids:
        raise InvalidParameterValueException("SubnetIds and SecurityIds must coexist or be both empty list.")
    subnets = {s.subnet_id: s for s in records.list_subnets(connection, scope)}
    groups = {g.group_id: g for g in records.list_groups(connection, scope)}
    for subnet_id in subnet_ids:
        if subnet_id not in subnets:
            raise InvalidParameterValueException(
                "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. "
                f"EC2 Error Message: The subnet ID '{subnet_id}' does not exist"
            )
    for group_id in group_ids:
        if group_id not in groups:
            raise InvalidParameterValueException(
                "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
                f"EC2 Error Message: The security group '{group_id}' does not exist"
            )
    vpc_ids = {subnets[s].vpc_id for s in subnet_ids} | {groups[g].vpc_id for g in group_ids}
    if len(vpc_ids) > 1:
        raise InvalidParameterValueException("Security Groups are required to be in the same VPC.")
    return {**config, "VpcId": vpc_ids.pop()}


def egress_policy(
    connection: Connection, scope: Scope, group_ids: Sequence[str]
) -> tuple[EgressRule, ...] | None:
    """What a function attached to ``group_ids`` may connect to: their egress rules to CIDRs, or None (no
    groups: the default network's policy). A rule naming a group allows nothing more: lambdad's sandboxes
    never reach each other."""
    if not group_ids:
        return None
    rules = records.list_rules(connection, scope, group_ids)
    allowed = {
        EgressRule(r.cidr_ipv4, r.ip_protocol, r.from_port, r.to_port)
        for r in rules
        if r.is_egress and r.cidr_ipv4 is not None
    }
    return tuple(sorted(allowed, key=lambda e: (e.cidr, e.protocol, e.from_port, e.to_port)))


# --- helpers ------------------------------------------------------------------------------------------


def _users(connection: Connection, scope: Scope, group_id: str) -> set[str]:
    return {a.function_name for a in records.vpc_attachments(connection, scope) if group_id in a.group_ids}


def _vpc(connection: Connection, scope: Scope, vpc_id: str) -> VpcRecord:
    for vpc in records.list_vpcs(connection, scope):
        if vpc.vpc_id == vpc_id:
            return vpc
    raise _vpc_missing(vpc_id)


def _group(connection: Connection, scope: Scope, group_id: str | None, name: str | None) -> GroupRecord:
    if not group_id and not name:
        raise Ec2Error("MissingParameter", "The request must contain the parameter groupName or groupId")
    if group_id and not group_id.startswith("sg-"):
        raise Ec2Error("InvalidGroupId.Malformed", f'Invalid id: "{group_id}" (expecting "sg-...")')
    for group in records.list_groups(connection, scope):
        if (group_id and group.group_id == group_id) or (not group_id and group.group_name == name):
            return group
    if group_id:
        raise _group_missing(group_id)
    raise Ec2Error("InvalidGroup.NotFound", f"The security group '{name}' does not exist")


def _vpc_missing(vpc_id: str) -> Ec2Error:
    return Ec2Error("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")


def _subnet_missing(subnet_id: str) -> Ec2Error:
    return Ec2Error("InvalidSubnetID.NotFound", f"The subnet ID '{subnet_id}' does not exist")


def _group_missing(group_id: str) -> Ec2Error:
    if not group_id.startswith("sg-"):
        return Ec2Error("InvalidGroupId.Malformed", f'Invalid id: "{group_id}" (expecting "sg-...")')
    return Ec2Error("InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")


def _rule_missing(rule_id: str) -> Ec2Error:
    return Ec2Error(
        "InvalidSecurityGroupRuleId.NotFound", f"The security group rule ID '{rule_id}' does not exist"
    )
