"""A function on the default network against private address ranges, and a SIGKILLed server's leftovers.

- Private ranges (listeners in a network namespace of the test's own, see tests/private_network.py)
  are refused unless the server was started with ``--allow-private-network``; a non-private address
  behind the same host is reached either way.
- A SIGKILLed server leaves its sandboxes' address leases and its code-slot mount; the next server
  started on the machine reclaims them (their veths went with the sandboxes' network namespaces).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdad.sandbox.network import Bridge
from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import deploy_python, eventually, invoke, start_server, unique
from tests.private_network import PROBE, PrivateListeners
from tests.support import Server

pytestmark = pytest.mark.timeout(240)

HANDLER = PROBE + "\ndef handler(event, context):\n    return probe(event['targets'])\n"
STATE = Path("/run/lambdad")


@pytest.fixture(scope="module")
def listeners() -> Iterator[PrivateListeners]:
    with PrivateListeners() as made:
        yield made


def _probe_from_function(server: Server, listeners: PrivateListeners) -> dict[str, str]:
    client = server.client(read_timeout=60)
    name = unique("probe")
    deploy_python(client, name, HANDLER)
    response, outcomes = invoke(client, name, {"targets": listeners.targets})
    assert "FunctionError" not in response, outcomes
    assert isinstance(outcomes, dict)
    return outcomes


def test_a_function_cannot_reach_private_ranges(tmp_path: Path, listeners: PrivateListeners):
    server = start_server(tmp_path)
    try:
        outcomes = _probe_from_function(server, listeners)
    finally:
        server.stop(timeout=60)
    assert {outcomes[address] for address in listeners.private} == {"ECONNREFUSED"}, outcomes
    assert outcomes[listeners.public] == "ok priv", outcomes


def test_allow_private_network_opens_only_the_ranges_given(tmp_path: Path, listeners: PrivateListeners):
    first, second, third = listeners.private
    allowed = ",".join(address.rsplit(".", 1)[0] + ".0/24" for address in (first, second))
    server = start_server(tmp_path, "--allow-private-network", allowed)
    try:
        outcomes = _probe_from_function(server, listeners)
    finally:
        server.stop(timeout=60)
    assert outcomes[first] == outcomes[second] == "ok priv", outcomes
    assert outcomes[third] == "ECONNREFUSED", outcomes
    assert outcomes[listeners.public] == "ok priv", outcomes


SCAN = """
import errno, socket, time
from collections import Counter
def handler(event, context):
    seen, deadline = Counter(), time.monotonic() + event['seconds']
    while time.monotonic() < deadline:
        for host in event['hosts']:
            try:
                socket.create_connection((host, event['port']), timeout=1).close()
                seen['connected'] += 1
            except OSError as exc:
                seen[errno.errorcode.get(exc.errno, 'timeout') if exc.errno else 'timeout'] += 1
    return dict(seen)
"""


def test_scanning_private_ranges_is_refused_without_slowing_other_functions(
    tmp_path: Path, listeners: PrivateListeners, record_property: Any
):
    server = start_server(tmp_path)
    try:
        victim = Victim(server)
        victim.baseline()
        client = server.client(read_timeout=60)
        scanner = unique("scanner")
        # A whole vCPU: the strongest scanner one function can be (and no CFS throttling of its own).
        deploy_python(client, scanner, SCAN, MemorySize=1769)
        with victim.measuring() as samples:
            event = {"hosts": listeners.private, "port": listeners.port, "seconds": 5}
            response, seen = invoke(client, scanner, event)
        assert "FunctionError" not in response, seen
        # Never connected; refused at once, but for the odd attempt that waits out its 1 s timeout
        # (seen on a machine with a load average of 7 on 2 cores: 1 in 4,000, once 6 in 63).
        assert set(seen) <= {"ECONNREFUSED", "timeout"}, seen
        assert seen.get("timeout", 0) <= seen["ECONNREFUSED"] // 10, seen
        record_property("summary_scan", f"{seen['ECONNREFUSED']} connections refused in 5 s")
        assert_unaffected(victim, samples, record_property)
    finally:
        server.stop(timeout=60)


def test_a_bad_allow_private_network_value_stops_the_server_with_a_reason(tmp_path: Path):
    server = Server(tmp_path / "data", extra_args=["--allow-private-network", "10.0.0.0/8,fd00::/8"])
    with pytest.raises(RuntimeError, match="exited with 2"):
        server.start()
    assert "not an IPv4 network" in server.log_path.read_text()


def _owned_by(pid: int, directory: Path, separator: str) -> list[Path]:
    """Entries of ``directory`` whose owner (first field) is process ``pid``."""
    found = []
    for path in directory.iterdir() if directory.is_dir() else ():
        text = path.read_text() if path.is_file() else path.name
        owner = text.split(separator, 1)[0] if text else ""
        if owner.split(".", 1)[0] == str(pid):
            found.append(path)
    return found


def test_a_killed_servers_leases_and_slot_mount_are_reclaimed_by_the_next_server(tmp_path: Path):
    server = start_server(tmp_path)
    try:
        name, leases, veths, slots = _hold_sandboxes(server)
    finally:
        server.stop(signal.SIGKILL)
    assert all(lease.exists() for lease in leases), "a SIGKILLed server cannot release what it holds"

    restarted = start_server(tmp_path)
    try:
        # Reclaimed at start, before the new server's first sandbox.
        assert [lease for lease in leases if lease.exists()] == []
        assert [slot for slot in slots if slot.exists()] == []
        assert str(slots[0]) not in Path("/proc/self/mountinfo").read_text()
        eventually(lambda: not any(veth.exists() for veth in veths) or None)
        response, _ = invoke(restarted.client(read_timeout=60), name, {})
        assert response["StatusCode"] == 200 and "FunctionError" not in response
    finally:
        restarted.stop(timeout=60)


def _hold_sandboxes(server: Server) -> tuple[str, list[Path], list[Path], list[Path]]:
    """Three environments of one function at once, plus a spare: the function's name, and the
    server's lease files, their veths and its slot mount."""
    client = server.client(read_timeout=60)
    name = unique("held")
    deploy_python(client, name, "import time\ndef handler(event, context):\n    time.sleep(1)\n")
    calls = [threading.Thread(target=invoke, args=(client, name, {})) for _ in range(3)]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    assert server.process is not None
    owner = server.process.pid
    leases = _owned_by(owner, STATE / "lambdad0.leases", " ")
    assert len(leases) >= 3
    bridge = Bridge()
    veths = [Path("/sys/class/net", bridge.veth_name(lease.name)) for lease in leases]
    assert all(veth.exists() for veth in veths)
    slots = eventually(lambda: _owned_by(owner, STATE / "slots", "-") or None)
    return name, leases, veths, slots
