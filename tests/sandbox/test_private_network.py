"""DEFAULT-network sandboxes and private address ranges: refused unless the operator allowed them;
DNS to the host's (private) resolver and traffic to other addresses still go through.

Each test uses a bridge and subnet of its own (per xdist worker), so that what it asserts is this
version's rules, whatever other lambdad processes on the machine do with the shared ``lambdad0``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.sandbox import NetworkMode
from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from lambdad.sandbox.network import host_resolvers
from tests.private_network import PROBE, PrivateListeners
from tests.sandbox.support import bridged_factory, py_spec, run, worker_number

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def listeners() -> Iterator[PrivateListeners]:
    with PrivateListeners() as made:
        yield made


def _factory(worker_id: str, **options: object) -> NamespaceSandboxFactory:
    return bridged_factory(worker_id, "priv", 217, **options)


def _probe(
    factory: NamespaceSandboxFactory, code_dir: Path, targets: list[tuple[str, int]]
) -> dict[str, str]:
    code = f"{PROBE}\nprint(json.dumps(probe({targets!r})))"

    async def scenario() -> str:
        try:
            result = await run(factory, py_spec(code, code_dir, network=NetworkMode.DEFAULT))
        finally:
            await factory.close()
        assert result.status == 0, result.output
        return result.output

    outcomes: dict[str, str] = json.loads(asyncio.run(scenario()))
    return outcomes


def test_private_ranges_are_refused_by_default(listeners: PrivateListeners, code_dir: Path, worker_id: str):
    outcomes = _probe(_factory(worker_id), code_dir, [*listeners.targets, ("fd00::1", 80)])
    # Refused by the host at once (a TCP reset), not left to time out.
    assert {outcomes[a] for a in listeners.private} == {"ECONNREFUSED"}, outcomes
    # The control: the same listener on a non-private address is reached through the same NAT.
    assert outcomes[listeners.public] == "ok priv", outcomes
    # No IPv6 at all (so no fc00::/7 or fe80::/10): the sandbox has no IPv6 route.
    assert outcomes["fd00::1"] == "ENETUNREACH", outcomes


def test_allowed_private_range_is_reachable(listeners: PrivateListeners, code_dir: Path, worker_id: str):
    allowed = listeners.private[0].rsplit(".", 1)[0] + ".0/24"
    # Overlapping ranges too (an interval set refuses overlapping elements: they are merged).
    factory = _factory(worker_id, allow_private_network=[allowed, listeners.private[0] + "/32"])
    outcomes = _probe(factory, code_dir, listeners.targets)
    assert outcomes[listeners.private[0]] == "ok priv", outcomes
    assert {outcomes[a] for a in listeners.private[1:]} == {"ECONNREFUSED"}, outcomes
    assert outcomes[listeners.public] == "ok priv", outcomes
    # The allowance went with the sandbox (and the table with the factory): nothing left that a later
    # sandbox on this address could inherit.
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert f"lbdpriv{worker_number(worker_id)}" not in tables


def test_dns_to_the_hosts_private_resolver_still_works(code_dir: Path, worker_id: str):
    resolvers = host_resolvers()
    if not resolvers or not any(r.is_private and not r.is_loopback for r in resolvers):
        pytest.skip("the host's resolver is not at a private address: nothing to check")
    try:
        host_answer = subprocess.run(
            ["getent", "hosts", "pypi.org"], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        host_answer = None
    if host_answer is None or host_answer.returncode != 0:
        pytest.skip("the host itself cannot resolve pypi.org")
    code = "import socket; print(socket.gethostbyname('pypi.org'))"
    factory = _factory(worker_id)

    async def scenario() -> str:
        try:
            result = await run(factory, py_spec(code, code_dir, network=NetworkMode.DEFAULT))
        finally:
            await factory.close()
        assert result.status == 0, result.output
        return result.output.strip()

    assert asyncio.run(scenario()) == host_answer.stdout.split()[0]


def test_a_table_replaced_by_another_version_is_made_again(
    listeners: PrivateListeners, code_dir: Path, worker_id: str
):
    # An older lambdad replaces the shared table with rules of its own (no private ranges) while
    # the ready file still names this version's: the next factory to start notices and repairs it.
    holder, bridge = _factory(worker_id), f"lbdpriv{worker_number(worker_id)}"
    code = f"{PROBE}\nprint(json.dumps(probe({listeners.targets!r})))"

    async def scenario() -> str:
        held = await holder.create(
            py_spec("import time; time.sleep(60)", code_dir, network=NetworkMode.DEFAULT)
        )
        later = _factory(worker_id)
        try:
            old_rules = f"table inet {bridge}\ndelete table inet {bridge}\ntable inet {bridge} {{ }}\n"
            subprocess.run(["nft", "-f", "-"], input=old_rules, text=True, check=True)
            result = await run(later, py_spec(code, code_dir, network=NetworkMode.DEFAULT))
            return result.output
        finally:
            await held.destroy()
            os.close(held.output)
            await later.close()
            await holder.close()

    outcomes = json.loads(asyncio.run(scenario()))
    assert {outcomes[a] for a in listeners.private} == {"ECONNREFUSED"}, outcomes


def test_allowances_are_per_factory_on_a_shared_bridge(
    listeners: PrivateListeners, code_dir: Path, worker_id: str
):
    # Two servers on one bridge and table: one allows the first range, the other nothing.
    allowed = listeners.private[0].rsplit(".", 1)[0] + ".0/24"
    allowing, strict = _factory(worker_id, allow_private_network=[allowed]), _factory(worker_id)
    code = f"{PROBE}\nprint(json.dumps(probe({listeners.targets!r})))"

    async def scenario() -> tuple[dict[str, str], dict[str, str]]:
        spec = py_spec(code, code_dir, network=NetworkMode.DEFAULT)
        try:
            both = await asyncio.gather(run(allowing, spec), run(strict, spec))
        finally:
            await strict.close()
            await allowing.close()
        return json.loads(both[0].output), json.loads(both[1].output)

    from_allowing, from_strict = asyncio.run(scenario())
    assert from_allowing[listeners.private[0]] == "ok priv", from_allowing
    assert from_strict[listeners.private[0]] == "ECONNREFUSED", from_strict
