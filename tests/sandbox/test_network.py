"""Sandbox networking: NONE, DEFAULT (NAT bridge) and HOST modes, and the Runtime API socket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from lambdad.sandbox import NetworkMode
from lambdad.sandbox.namespaces import NamespaceSandbox, NamespaceSandboxFactory
from tests.sandbox.support import CGROUP_ROOT, TcpServer, host_address, leftovers, py_spec, read_line, run

pytestmark = pytest.mark.timeout(60)

#: Sandbox code printing, as JSON, how each (host, port) connection attempt went.
PROBE = """
import json, socket, errno
results = {}
for host, port in TARGETS:
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            results[f'{host}:{port}'] = 'ok ' + conn.recv(16).decode()
    except OSError as exc:
        results[f'{host}:{port}'] = errno.errorcode.get(exc.errno, 'timeout') if exc.errno else 'timeout'
print(json.dumps([results, [name for _, name in socket.if_nameindex()]]))
"""


def probe(targets: list[tuple[str, int]]) -> str:
    return f"TARGETS = {targets!r}\n{PROBE}"


@pytest.fixture
def host_servers():
    """Two host servers: one on loopback only, one on every address (incl. the bridge's)."""
    loopback, everywhere = TcpServer("127.0.0.1"), TcpServer("0.0.0.0")
    try:
        yield loopback, everywhere
    finally:
        loopback.close()
        everywhere.close()


def test_none_network_has_only_loopback(ns_factory: NamespaceSandboxFactory, code_dir: Path, host_servers):
    loopback, everywhere = host_servers
    targets = [
        ("127.0.0.1", loopback.port),
        (host_address(), everywhere.port),
        ("10.213.0.1", everywhere.port),
    ]
    result = asyncio.run(run(ns_factory, py_spec(probe(targets), code_dir, network=NetworkMode.NONE)))
    assert result.status == 0, result.output
    outcomes, interfaces = json.loads(result.output)
    assert interfaces == ["lo"]
    assert outcomes[f"127.0.0.1:{loopback.port}"] == "ECONNREFUSED"  # its own, empty loopback
    assert all(v == "ENETUNREACH" for k, v in outcomes.items() if not k.startswith("127."))
    assert loopback.accepted == everywhere.accepted == 0


@pytest.mark.parametrize("mode", [NetworkMode.DEFAULT, NetworkMode.HOST])
def test_host_services_are_unreachable_from_default_network_but_not_host_network(
    ns_factory: NamespaceSandboxFactory, code_dir: Path, host_servers, mode: NetworkMode
):
    loopback, everywhere = host_servers
    targets = [
        ("127.0.0.1", loopback.port),
        ("10.213.0.1", everywhere.port),
        (host_address(), everywhere.port),
    ]
    result = asyncio.run(run(ns_factory, py_spec(probe(targets), code_dir, network=mode)))
    assert result.status == 0, result.output
    outcomes, interfaces = json.loads(result.output)
    if mode == NetworkMode.DEFAULT:
        assert interfaces == ["lo", "eth0"]
        assert outcomes[f"127.0.0.1:{loopback.port}"] == "ECONNREFUSED"
        # The bridge address and the host's own address are dropped by the input chain.
        assert outcomes[f"10.213.0.1:{everywhere.port}"] == "timeout"
        assert outcomes[f"{host_address()}:{everywhere.port}"] == "timeout"
        assert loopback.accepted == everywhere.accepted == 0
    else:
        # The control: the same probe does reach them when there is no isolation.
        assert outcomes[f"127.0.0.1:{loopback.port}"] == "ok host"
        assert outcomes[f"{host_address()}:{everywhere.port}"] == "ok host"


PEER_SERVER = """
import socket, threading, time
server = socket.create_server(('0.0.0.0', 8080))
def serve():
    while True:
        conn, _ = server.accept()
        conn.sendall(b'peer')
        conn.close()
threading.Thread(target=serve, daemon=True).start()
print('ready', flush=True)
"""


def test_default_network_sandboxes_cannot_reach_each_other(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    async def scenario() -> None:
        server_code = PEER_SERVER + "time.sleep(60)"
        server = await ns_factory.create(py_spec(server_code, code_dir, network=NetworkMode.DEFAULT))
        try:
            assert isinstance(server, NamespaceSandbox) and server.ip_address
            assert read_line(server.output) == "ready"
            target = [(server.ip_address, 8080)]
            other = await run(ns_factory, py_spec(probe(target), code_dir, network=NetworkMode.DEFAULT))
            assert json.loads(other.output)[0] == {f"{server.ip_address}:8080": "timeout"}, other.output
        finally:
            await server.destroy()
            os.close(server.output)

    asyncio.run(scenario())


def test_default_network_sandbox_reaches_its_own_bridge_address(
    ns_factory: NamespaceSandboxFactory, code_dir: Path
):
    # The control for the test above: a server like that one is reachable on its eth0 address.
    code = PEER_SERVER + (
        "import fcntl, struct\n"
        "request = struct.pack('256s', b'eth0')\n"
        "ip = socket.inet_ntoa(fcntl.ioctl(socket.socket(), 0x8915, request)[20:24])  # SIOCGIFADDR\n"
        "print(socket.create_connection((ip, 8080), timeout=1).recv(4).decode())\n"
    )
    result = asyncio.run(run(ns_factory, py_spec(code, code_dir, network=NetworkMode.DEFAULT)))
    assert result.output.split() == ["ready", "peer"], result.output


def test_default_network_routes_out_through_nat(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    code = """
import socket, json
routes = open('/proc/net/route').read().split('\\n')[1:]
default = [r.split()[0] for r in routes if r.split() and r.split()[1] == '00000000']
try:
    address = socket.gethostbyname('pypi.org')
    with socket.create_connection((address, 443), timeout=5):
        outbound = 'ok'
except OSError as exc:
    outbound = repr(exc)
print(json.dumps([default, outbound]))
"""

    async def scenario() -> tuple[int, str, str, str]:
        sandbox = await ns_factory.create(py_spec(code, code_dir, network=NetworkMode.DEFAULT))
        try:
            # Checked while the sandbox is attached: another process's factory may remove the
            # shared bridge and rules once no sandbox uses them.
            ruleset = subprocess.run(
                ["nft", "list", "table", "inet", "lambdad0"], capture_output=True, text=True
            )
            forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
            status = await asyncio.wait_for(sandbox.wait(), 20)
            return status, read_line(sandbox.output), ruleset.stdout, forwarding
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)

    status, output, ruleset, forwarding = asyncio.run(scenario())
    assert status == 0, output
    default_route, outbound = json.loads(output)
    assert default_route == ["eth0"]
    assert "masquerade" in ruleset and 'iifname "lambdad0" drop' in ruleset
    assert forwarding == "1"
    try:  # this machine only reaches package registries; skip the real outbound check elsewhere
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        pytest.skip("the host itself cannot reach pypi.org:443")
    assert outbound == "ok"


@pytest.mark.parametrize("mode", list(NetworkMode))
def test_runtime_api_socket_accepts_the_sandboxs_connection(
    ns_factory: NamespaceSandboxFactory, code_dir: Path, mode: NetworkMode
):
    code = """
import os, socket
host, port = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')
with socket.create_connection((host, int(port)), timeout=5) as conn:
    conn.sendall(b'GET /2018-06-01/runtime/invocation/next')
    print(conn.recv(64).decode())
"""

    async def scenario() -> None:
        sandbox = await ns_factory.create(py_spec(code, code_dir, network=mode))
        try:
            listener = sandbox.runtime_api_socket
            assert listener is not None
            if mode == NetworkMode.HOST:
                assert sandbox.runtime_api_address == f"127.0.0.1:{listener.getsockname()[1]}"
            else:
                assert sandbox.runtime_api_address == "127.0.0.1:9001"
                assert listener.getsockname() == ("127.0.0.1", 9001)
            loop = asyncio.get_running_loop()
            listener.setblocking(False)
            conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 10)
            with conn:
                request = await asyncio.wait_for(loop.sock_recv(conn, 64), 10)
                assert request == b"GET /2018-06-01/runtime/invocation/next"
                await loop.sock_sendall(conn, b"event")
            assert await asyncio.wait_for(sandbox.wait(), 10) == 0
            assert read_line(sandbox.output) == "event"
        finally:
            await sandbox.destroy()
            os.close(sandbox.output)

    asyncio.run(scenario())


def test_each_sandbox_has_its_own_port_9001_and_address(ns_factory: NamespaceSandboxFactory, code_dir: Path):
    async def scenario() -> None:
        spec = py_spec("import time; time.sleep(30)", code_dir, network=NetworkMode.DEFAULT)
        sandboxes = await asyncio.gather(*(ns_factory.create(spec) for _ in range(4)))
        try:
            assert all(s.runtime_api_socket.getsockname() == ("127.0.0.1", 9001) for s in sandboxes)
            assert len({s.ip_address for s in sandboxes}) == 4
            assert len({s.veth for s in sandboxes}) == 4
        finally:
            await asyncio.gather(*(s.destroy() for s in sandboxes))
            for s in sandboxes:
                os.close(s.output)
        for s in sandboxes:
            assert leftovers(s) == []

    asyncio.run(scenario())


def test_factory_close_removes_bridge_nat_rules_and_cgroup_parents(code_dir: Path, worker_id: str):
    # A bridge and cgroup parent of this test's own (one per xdist worker, so the names stay
    # few: the bridge's lock file in /run/lambdad is deliberately never deleted).
    number = 0 if worker_id == "master" else int(worker_id.removeprefix("gw")) + 1
    bridge, parent = f"lbdtest{number}", f"lambdad-test{number}-{uuid.uuid4().hex[:6]}"
    subnet = f"10.214.{number}.0/24"
    try:
        factory = NamespaceSandboxFactory(bridge=bridge, subnet=subnet, cgroup_parent=parent)
    except Exception as exc:  # SandboxUnavailable
        pytest.skip(str(exc))

    async def scenario() -> NamespaceSandbox:
        try:
            sandbox = await factory.create(
                py_spec("import time; time.sleep(30)", code_dir, network=NetworkMode.DEFAULT)
            )
            assert isinstance(sandbox, NamespaceSandbox)
            assert Path(f"/sys/class/net/{bridge}/brif/{sandbox.veth}").exists()
            assert (CGROUP_ROOT / "memory" / parent / sandbox.id).is_dir()
        finally:
            await factory.close()  # destroys the sandbox still running, then shared state
        os.close(sandbox.output)
        return sandbox

    sandbox = asyncio.run(scenario())
    assert leftovers(sandbox) == []
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert list(CGROUP_ROOT.glob(f"*/{parent}")) == []
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert bridge not in tables
    assert not Path(f"/run/lambdad/{bridge}.ready").exists()


def test_reclaiming_leases_while_another_server_tears_the_bridge_down_finds_nothing(tmp_path: Path) -> None:
    """A server starting (it reclaims dead servers' leases) while another removes the shared bridge and
    its lease directory must start, not fail on the vanished directory."""
    import fcntl
    import shutil
    import threading

    from lambdad.sandbox.network import Bridge

    bridge = Bridge(name="lambdadtest0", state_dir=tmp_path)
    leases = tmp_path / "lambdadtest0.leases"
    leases.mkdir()
    lock = os.open(tmp_path / "lambdadtest0.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # the other server's teardown holds the lock...
    outcome: list[object] = []
    reclaiming = threading.Thread(target=lambda: outcome.append(_attempt(bridge.reclaim_stale)))
    reclaiming.start()
    reclaiming.join(0.3)  # ...while this one waits for it
    shutil.rmtree(leases)  # and removes the directory before letting go
    os.close(lock)
    reclaiming.join(10)
    assert outcome == [0]


def _attempt(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except OSError as error:
        return error
