"""Queries on EC2's networks: VPCs, subnets, security groups and their rules. Each takes the
transaction's connection. Lists are per account and region and small (a team's networks), so the
service filters them in memory as EC2's Describe filters ask."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select

from lambdad.models import Scope
from lambdad.store.records import as_utc
from lambdad.store.schema import function_versions, security_group_rules, security_groups, subnets, vpcs
from lambdad.store.scoping import in_scope, scoped


@dataclass(frozen=True)
class VpcRecord:
    vpc_id: str
    cidr_block: str
    tags: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class SubnetRecord:
    subnet_id: str
    vpc_id: str
    cidr_block: str
    availability_zone: str
    tags: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class GroupRecord:
    group_id: str
    vpc_id: str
    group_name: str
    description: str
    tags: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class RuleRecord:
    """One security group rule. Ports are -1 for "all" (and for ICMP, ``from_port`` is the type and
    ``to_port`` the code); exactly one of ``cidr_ipv4`` and ``referenced_group_id`` is set."""

    rule_id: str
    group_id: str
    is_egress: bool
    ip_protocol: str
    from_port: int
    to_port: int
    cidr_ipv4: str | None
    referenced_group_id: str | None
    description: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.min)

    @property
    def permission(self) -> tuple[str, int, int, str | None, str | None]:
        """What the rule allows, without its id or description: two rules with equal ones are duplicates."""
        return (self.ip_protocol, self.from_port, self.to_port, self.cidr_ipv4, self.referenced_group_id)


@dataclass(frozen=True)
class VpcAttachment:
    """A function version's VpcConfig as stored."""

    function_name: str
    version: str
    subnet_ids: tuple[str, ...]
    group_ids: tuple[str, ...]


def insert_vpc(connection: Connection, scope: Scope, vpc: VpcRecord) -> None:
    connection.execute(insert(vpcs).values(**scoped(scope), **vars(vpc)))


def insert_subnet(connection: Connection, scope: Scope, subnet: SubnetRecord) -> None:
    connection.execute(insert(subnets).values(**scoped(scope), **vars(subnet)))


def insert_group(connection: Connection, scope: Scope, group: GroupRecord) -> None:
    connection.execute(insert(security_groups).values(**scoped(scope), **vars(group)))


def insert_rules(connection: Connection, scope: Scope, rules: Iterable[RuleRecord]) -> None:
    rows = [{**scoped(scope), **vars(rule)} for rule in rules]
    if rows:
        connection.execute(insert(security_group_rules), rows)


def list_vpcs(connection: Connection, scope: Scope) -> list[VpcRecord]:
    rows = connection.execute(select(vpcs).where(in_scope(vpcs, scope)).order_by(vpcs.c.created_at))
    return [VpcRecord(r.vpc_id, r.cidr_block, dict(r.tags), as_utc(r.created_at)) for r in rows]


def list_subnets(connection: Connection, scope: Scope) -> list[SubnetRecord]:
    query = select(subnets).where(in_scope(subnets, scope)).order_by(subnets.c.created_at)
    return [
        SubnetRecord(
            r.subnet_id, r.vpc_id, r.cidr_block, r.availability_zone, dict(r.tags), as_utc(r.created_at)
        )
        for r in connection.execute(query)
    ]


def list_groups(connection: Connection, scope: Scope) -> list[GroupRecord]:
    query = (
        select(security_groups).where(in_scope(security_groups, scope)).order_by(security_groups.c.created_at)
    )
    return [
        GroupRecord(r.group_id, r.vpc_id, r.group_name, r.description, dict(r.tags), as_utc(r.created_at))
        for r in connection.execute(query)
    ]


def list_rules(
    connection: Connection, scope: Scope, group_ids: Iterable[str] | None = None
) -> list[RuleRecord]:
    """Rules in the order they were made (all of the region's, or those of ``group_ids``)."""
    table = security_group_rules
    query = select(table).where(in_scope(table, scope))
    if group_ids is not None:
        query = query.where(table.c.group_id.in_(list(group_ids)))
    query = query.order_by(table.c.created_at, table.c.rule_id)
    return [
        RuleRecord(
            r.rule_id,
            r.group_id,
            bool(r.is_egress),
            r.ip_protocol,
            r.from_port,
            r.to_port,
            r.cidr_ipv4,
            r.referenced_group_id,
            r.description,
            as_utc(r.created_at),
        )
        for r in connection.execute(query)
    ]


def delete_rules(connection: Connection, scope: Scope, rule_ids: Iterable[str]) -> None:
    table = security_group_rules
    connection.execute(delete(table).where(in_scope(table, scope), table.c.rule_id.in_(list(rule_ids))))


def delete_row(connection: Connection, scope: Scope, kind: str, resource_id: str) -> None:
    """Delete one VPC, subnet or security group (``kind``: vpc, subnet, group); what hangs off it goes too."""
    table, column = _TABLES[kind]
    connection.execute(delete(table).where(in_scope(table, scope), table.c[column] == resource_id))


def vpc_attachments(connection: Connection, scope: Scope) -> list[VpcAttachment]:
    """Every function version of the account's region whose VpcConfig names subnets or security groups."""
    found = []
    table = function_versions
    query = select(table.c.function_name, table.c.version, table.c.config).where(in_scope(table, scope))
    for row in connection.execute(query):
        # Read from the row's JSON as it is: the rest of the version (its sealed environment) is not needed.
        config: dict[str, Any] = (row.config.get("extra") or {}).get("VpcConfig") or {}
        subnet_ids, group_ids = config.get("SubnetIds") or [], config.get("SecurityGroupIds") or []
        if subnet_ids or group_ids:
            found.append(VpcAttachment(row.function_name, row.version, tuple(subnet_ids), tuple(group_ids)))
    return found


_TABLES: dict[str, tuple[Table, str]] = {
    "vpc": (vpcs, "vpc_id"),
    "subnet": (subnets, "subnet_id"),
    "group": (security_groups, "group_id"),
}
