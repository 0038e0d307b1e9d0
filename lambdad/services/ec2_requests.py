"""What EC2's network requests say, read as EC2 reads them: Describe filters and id lists, CIDRs, tags, and
the rules an Authorize/Revoke call names (protocols by name or number, port ranges, ICMP type and code),
with EC2's errors. Pure: no database, no state."""

from __future__ import annotations

import fnmatch
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from lambdad.errors import Ec2Error
from lambdad.store.networks import GroupRecord, RuleRecord, SubnetRecord, VpcRecord


def new_id(prefix: str) -> str:
    """An id as EC2 forms them: a prefix and 17 hex digits."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


#: Protocols by the names and numbers EC2 accepts; it answers with the name where there is one.
_PROTOCOLS = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "-1": "-1",
    "all": "-1",
}
_WITH_PORTS = ("tcp", "udp")


def cidr_block(text: str, parameter: str) -> ipaddress.IPv4Network:
    """``text`` as an IPv4 network, or EC2's error naming ``parameter``."""
    try:
        return ipaddress.IPv4Network(text)
    except ValueError:
        raise Ec2Error(
            "InvalidParameterValue",
            f"Value ({text}) for parameter {parameter} is invalid. This is not a valid CIDR block.",
        ) from None


def tags_of(params: dict[str, Any], resource_type: str) -> dict[str, str]:
    """The tags a create call's TagSpecifications give a resource of ``resource_type``."""
    tags: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType", resource_type) == resource_type:
            tags.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags") or []})
    return tags


def by_ids(
    items: list[Any], ids: list[str] | None, key: Callable[[Any], str], missing: Callable[[str], Ec2Error]
) -> list[Any]:
    """``items`` restricted to ``ids`` (all if none given); an unknown id is EC2's NotFound error."""
    if not ids:
        return items
    known = {key(item): item for item in items}
    for wanted in ids:
        if wanted not in known:
            raise missing(wanted)
    return [item for item in items if key(item) in ids]


def filtered(
    items: list[Any], filters: list[dict[str, Any]] | None, values: Callable[[Any], dict[str, list[str]]]
) -> list[Any]:
    """EC2's Describe filters: every filter must match (any of its values; ``*`` and ``?`` are wildcards),
    ``tag:KEY`` and ``tag-key`` included. An unknown filter name is refused, as EC2 does."""
    if not filters:
        return items
    kept = []
    for item in items:
        known = values(item)
        tags: dict[str, str] = getattr(item, "tags", {})
        matched = True
        for spec in filters:
            name, patterns = spec.get("Name", ""), spec.get("Values") or []
            if name.startswith("tag:"):
                candidates = [tags[name[4:]]] if name[4:] in tags else []
            elif name == "tag-key":
                candidates = list(tags)
            elif name in known:
                candidates = known[name]
            else:
                raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
            if not any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
                matched = False
                break
        if matched:
            kept.append(item)
    return kept


def vpc_filters(vpc: VpcRecord) -> dict[str, list[str]]:
    return {
        "vpc-id": [vpc.vpc_id],
        "cidr": [vpc.cidr_block],
        "cidr-block-association.cidr-block": [vpc.cidr_block],
        "state": ["available"],
        "is-default": ["false"],
    }


def subnet_filters(subnet: SubnetRecord) -> dict[str, list[str]]:
    return {
        "subnet-id": [subnet.subnet_id],
        "vpc-id": [subnet.vpc_id],
        "cidr-block": [subnet.cidr_block],
        "cidr": [subnet.cidr_block],
        "availability-zone": [subnet.availability_zone],
        "state": ["available"],
        "default-for-az": ["false"],
    }


def group_filters(group: GroupRecord) -> dict[str, list[str]]:
    return {
        "group-id": [group.group_id],
        "group-name": [group.group_name],
        "vpc-id": [group.vpc_id],
        "description": [group.description],
    }


def rule_filters(rule: RuleRecord) -> dict[str, list[str]]:
    return {"group-id": [rule.group_id], "security-group-rule-id": [rule.rule_id]}


def has_permissions(params: dict[str, Any]) -> bool:
    return bool(params.get("IpPermissions") or params.get("IpProtocol") or params.get("CidrIp"))


def rules_from(params: dict[str, Any], group_id: str, egress: bool) -> list[RuleRecord]:
    """The rules an Authorize/Revoke call names: its IpPermissions, or the older top-level members
    (IpProtocol, FromPort, ToPort, CidrIp) that ingress calls may use."""
    permissions = list(params.get("IpPermissions") or [])
    if not permissions and (params.get("IpProtocol") or params.get("CidrIp")):
        permissions = [
            {
                "IpProtocol": params.get("IpProtocol", "-1"),
                "FromPort": params.get("FromPort"),
                "ToPort": params.get("ToPort"),
                "IpRanges": [{"CidrIp": params["CidrIp"]}] if params.get("CidrIp") else [],
            }
        ]
    if not permissions:
        raise Ec2Error("MissingParameter", "The request must contain the parameter ipPermissions")
    rules = []
    for permission in permissions:
        protocol, from_port, to_port = _protocol_and_ports(permission)
        if permission.get("Ipv6Ranges") or permission.get("PrefixListIds"):
            raise Ec2Error(
                "InvalidParameterValue",
                "lambdad's security groups take IPv4 ranges and groups only (no IPv6, no prefix lists)",
            )
        base = RuleRecord(new_id("sgr"), group_id, egress, protocol, from_port, to_port, None, None)
        targets = [
            replace(
                base,
                rule_id=new_id("sgr"),
                cidr_ipv4=_rule_cidr(r.get("CidrIp", "")),
                description=r.get("Description", ""),
            )
            for r in permission.get("IpRanges") or []
        ]
        targets += [
            replace(
                base,
                rule_id=new_id("sgr"),
                referenced_group_id=p.get("GroupId", ""),
                description=p.get("Description", ""),
            )
            for p in permission.get("UserIdGroupPairs") or []
        ]
        if not targets:
            raise Ec2Error(
                "InvalidParameterValue", "The request must contain a CIDR range or a security group."
            )
        rules += targets
    return rules


def _rule_cidr(text: str) -> str:
    try:
        return str(ipaddress.IPv4Network(text))
    except ValueError:
        raise Ec2Error("InvalidParameterValue", f"CIDR block {text} is malformed") from None


def _protocol_and_ports(permission: dict[str, Any]) -> tuple[str, int, int]:
    given = str(permission.get("IpProtocol", "")).lower()
    protocol = _PROTOCOLS.get(given)
    if protocol is None:
        if not given.isdigit() or not 0 <= int(given) <= 255:
            raise Ec2Error(
                "InvalidParameterValue", f"Invalid value '{given}' for IP protocol. Unknown protocol."
            )
        protocol = given
    from_port, to_port = permission.get("FromPort"), permission.get("ToPort")
    if protocol in _WITH_PORTS:
        if from_port is None or to_port is None:
            raise Ec2Error(
                "InvalidParameterValue",
                "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
            )
        if not 0 <= from_port <= to_port <= 65535:
            raise Ec2Error("InvalidParameterValue", f"Invalid TCP/UDP port range: {from_port}-{to_port}")
        return protocol, from_port, to_port
    if protocol == "icmp":
        icmp_type = -1 if from_port is None else from_port
        icmp_code = -1 if to_port is None else to_port
        if not (-1 <= icmp_type <= 255 and -1 <= icmp_code <= 255) or (icmp_type == -1 and icmp_code != -1):
            raise Ec2Error("InvalidParameterValue", f"Invalid ICMP type and code: {icmp_type}, {icmp_code}")
        return protocol, icmp_type, icmp_code
    return protocol, -1, -1


def describe_rule(rule: RuleRecord) -> str:
    """A rule as EC2's InvalidPermission.Duplicate message words it."""
    peer = rule.cidr_ipv4 or rule.referenced_group_id
    if rule.ip_protocol == "-1":
        return f"peer: {peer}, ALL, ALLOW"
    if rule.ip_protocol == "icmp":
        return f"peer: {peer}, ICMP, type: {rule.from_port}, code: {rule.to_port}, ALLOW"
    if rule.ip_protocol in _WITH_PORTS:
        ports = f"from port: {rule.from_port}, to port: {rule.to_port}"
        return f"peer: {peer}, {rule.ip_protocol.upper()}, {ports}, ALLOW"
    return f"peer: {peer}, {rule.ip_protocol}, ALLOW"
