"""Egress policies (a function's security groups' egress rules) on DEFAULT-network sandboxes: exactly
the connections the rules allow, only ever narrowing the default network, and nothing left behind.

Listeners run in a network namespace of the test's own (tests/private_network.py); each test uses a
bridge and subnet of its own (per xdist worker).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.sandbox import EgressRule, NetworkMode, SandboxUnavailable
from lambdad.sandbox.egress import EgressTable
from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from lambdad.sandbox.network import Bridge
from tests.private_network import PROBE, PrivateListeners
from tests.sandbox.support import bridged_factory, py_spec, run, worker_number

pytestmark = pytest.mark.timeout(90)
#: An owner no process is: pids stay below pid_max, at most 2**22.
DEAD_OWNER = "4194304.1"


@pytest.fixture
def listeners() -> Iterator[PrivateListeners]:
    with PrivateListeners() as made:
        yield made


def _factory(worker_id: str, **options: object) -> NamespaceSandboxFactory:
    return bridged_factory(worker_id, "egr", 216, **options)


def _probe(
    factory: NamespaceSandboxFactory,
    code_dir: Path,
    targets: list[tuple[str, int]],
    egress: tuple[EgressRule, ...] | None,
) -> dict[str, str]:
    # Keyed by "host:port" (the probe keys by host alone).
    code = f"{PROBE}\nprint(json.dumps({{f'{{h}}:{{p}}': probe([(h, p)])[h] for h, p in {targets!r}}}))"

    async def scenario() -> str:
        spec = py_spec(code, code_dir, network=NetworkMode.DEFAULT, egress=egress)
        result = await run(factory, spec)
        assert result.status == 0, result.output
        return result.output

    outcomes: dict[str, str] = json.loads(asyncio.run(scenario()))
    return outcomes


def _tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def test_a_policy_opens_exactly_what_its_rules_allow(
    listeners: PrivateListeners, code_dir: Path, worker_id: str
):
    other_port = listeners.listen_again()
    public, private = listeners.public, listeners.private[0]
    targets = [(public, listeners.port), (public, other_port), (private, listeners.port)]
    factory = _factory(worker_id)
    try:
        # The control: without a policy both public ports answer (and the private range is refused).
        free = _probe(factory, code_dir, targets, None)
        assert free == {
            f"{public}:{listeners.port}": "ok priv",
            f"{public}:{other_port}": "ok priv",
            f"{private}:{listeners.port}": "ECONNREFUSED",
        }, free
        rules = (
            EgressRule(f"{public}/32", "tcp", listeners.port, listeners.port),
            # A policy never widens the default network: the private range stays refused.
            EgressRule(private.rsplit(".", 1)[0] + ".0/24", "-1"),
        )
        held = _probe(factory, code_dir, targets, rules)
        assert held == {
            f"{public}:{listeners.port}": "ok priv",
            f"{public}:{other_port}": "ECONNREFUSED",  # refused at once by the policy, not timed out
            f"{private}:{listeners.port}": "ECONNREFUSED",
        }, held
        # A port range, and no rules at all.
        low, high = sorted((listeners.port, other_port))
        subnet = public.rsplit(".", 1)[0] + ".0/24"
        ranged = _probe(factory, code_dir, targets[:2], (EgressRule(subnet, "tcp", low, high),))
        assert set(ranged.values()) == {"ok priv"}, ranged
        udp_only = _probe(factory, code_dir, targets[:2], (EgressRule("0.0.0.0/0", "udp", 0, 65535),))
        assert set(udp_only.values()) == {"ECONNREFUSED"}, udp_only
        nothing = _probe(factory, code_dir, targets[:2], ())
        assert set(nothing.values()) == {"ECONNREFUSED"}, nothing
        # Each sandbox's chain went with it.
        listed = subprocess.run(
            ["nft", "list", "table", "inet", f"lbdegr{worker_number(worker_id)}_egress"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "sandbox_" not in listed and "jump" not in listed.split("chain forward")[0], listed
    finally:
        asyncio.run(factory.close())
    # The table with the bridge: nothing left that a later sandbox could inherit.
    assert f"lbdegr{worker_number(worker_id)}" not in _tables()


def test_a_policy_on_the_hosts_network_is_refused(code_dir: Path, worker_id: str):
    factory = _factory(worker_id)

    async def scenario() -> None:
        try:
            spec = py_spec("print(1)", code_dir, network=NetworkMode.HOST, egress=())
            with pytest.raises(Exception, match="egress policy cannot be enforced"):
                await run(factory, spec)
        finally:
            await factory.close()

    asyncio.run(scenario())


def test_a_dead_servers_policies_are_reclaimed_with_its_leases(worker_id: str):
    # What a SIGKILLed server leaves: a lease naming a dead owner and "egress", and the policy's chain.
    number = worker_number(worker_id)
    bridge = Bridge(f"lbdegr{number}", f"10.216.{number}.0/24")
    try:
        bridge.ensure()
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    address = f"10.216.{number}.9"
    try:
        bridge._ensure_egress_table()
        subprocess.run(
            ["nft", "-f", "-"],
            input=EgressTable(bridge.name).policy(address, (EgressRule("198.18.0.0/15", "tcp", 443, 443),)),
            text=True,
            check=True,
        )
        lease = Path("/run/lambdad") / f"{bridge.name}.leases" / address
        lease.write_text(f"{DEAD_OWNER} sandbox-x - egress\n")
        assert bridge.reclaim_stale() == 1
        listed = subprocess.run(
            ["nft", "list", "table", "inet", f"{bridge.name}_egress"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert EgressTable.chain(address) not in listed and address not in listed, listed
        assert not lease.exists()
    finally:
        bridge.teardown()
        bridge.close()
    assert bridge.name not in _tables()
