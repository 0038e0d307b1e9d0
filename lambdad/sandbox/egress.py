"""Egress policies: a sandbox on the bridge that may open only the connections some rules allow (a
function's security groups' egress rules).

They live in a table of their own, beside the bridge's (``<bridge>_egress``), whose forward chain runs
just before the bridge's: a policy sandbox's packets jump, through the ``egress`` map keyed by its
address, to the sandbox's own chain, which accepts (hands on to the bridge's table) what its rules
allow and refuses the rest at once (TCP with a reset, the rest with ICMP admin-prohibited). A packet
must pass both tables, so a policy only ever narrows the default network: private ranges stay refused
unless the operator allowed them. DNS to the host's resolvers stays open, as AWS's security groups never
filter DNS to a VPC's resolver. Connections already allowed stay open while a sandbox lives (AWS tracks
them too); a rule change replaces a running sandbox's chain in one transaction.

The bridge's table is replaced whole when its ruleset changes between lambdad versions; keeping policies
out of it means no such replacement can ever drop them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from lambdad.sandbox.api import EgressRule

__all__ = ["EgressTable"]


class EgressTable:
    """The nft scripts of the egress table of bridge ``bridge``."""

    def __init__(self, bridge: str) -> None:
        self.bridge = bridge
        self.name = f"{bridge}_egress"

    def creation(self) -> str:
        """The table, its map and its forward chain (run only where the chain does not exist yet: a
        chain's rules are added again each time its block is)."""
        return f"""
table inet {self.name} {{
  map egress {{
    type ipv4_addr : verdict;
  }}
  chain forward {{
    type filter hook forward priority filter - 1; policy accept;
    iifname "{self.bridge}" ip saddr vmap @egress
  }}
}}
"""

    def policy(self, address: str, rules: Sequence[EgressRule], resolvers: Sequence[str] = ()) -> str:
        """The sandbox at ``address`` may open only what ``rules`` allow (and DNS to ``resolvers``)."""
        element = f"add element inet {self.name} egress {{ {address} : jump {self.chain(address)} }}"
        return self.rules(address, rules, resolvers) + element + "\n"

    def rules(self, address: str, rules: Sequence[EgressRule], resolvers: Sequence[str] = ()) -> str:
        """The rules of the chain of the sandbox at ``address``, made or replaced in one transaction
        (a live policy change: no packet ever meets a half-made chain)."""
        chain = f"inet {self.name} {self.chain(address)}"
        lines = [f"add chain {chain}", f"flush chain {chain}"]
        # Connections already allowed go on, but never a SYN: a new connection reusing the ports of one
        # conntrack still remembers would otherwise pass as "established" after its rule was revoked.
        lines.append(f"add rule {chain} meta l4proto != tcp ct state established,related accept")
        lines.append(f"add rule {chain} tcp flags & (syn | ack) != syn ct state established,related accept")
        if resolvers:
            dns = ", ".join(str(ipaddress.IPv4Address(r)) for r in resolvers)
            lines.append(
                f"add rule {chain} ip daddr {{ {dns} }} meta l4proto {{ tcp, udp }} th dport 53 accept"
            )
        lines += [f"add rule {chain} ip daddr {_network(rule.cidr)} {_match(rule)}accept" for rule in rules]
        lines += [
            f"add rule {chain} meta l4proto tcp reject with tcp reset",
            f"add rule {chain} reject with icmp type admin-prohibited",
        ]
        return "\n".join(lines) + "\n"

    def removal(self, address: str) -> str:
        """Remove the policy of the sandbox at ``address`` (fails if it has none)."""
        element = f"delete element inet {self.name} egress {{ {address} }}"
        return f"{element}\ndelete chain inet {self.name} {self.chain(address)}\n"

    @staticmethod
    def chain(address: str) -> str:
        """The chain holding the policy of the sandbox at ``address``."""
        return "sandbox_" + str(ipaddress.IPv4Address(address)).replace(".", "_")


def _network(cidr: str) -> str:
    return str(ipaddress.IPv4Network(cidr))  # never anything but a network into a script


def _match(rule: EgressRule) -> str:
    """The protocol and port part of a rule's match (empty for every protocol), with a trailing space."""
    if rule.protocol == "-1":
        return ""
    if rule.protocol in ("tcp", "udp"):
        ports = str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}"
        return f"{rule.protocol} dport {ports} "
    if rule.protocol == "icmp":
        if rule.from_port == -1:
            return "meta l4proto icmp "
        code = f"icmp code {rule.to_port} " if rule.to_port != -1 else ""
        return f"icmp type {rule.from_port} {code}"
    return f"meta l4proto {int(rule.protocol)} "
