"""A function is isolated from the host: it cannot read the host's files or lambdad's data, see host
processes, exhaust pids, exceed its memory, reach lambdad's port or any host service; it runs unprivileged
with a read-only /var/task and a writable /tmp."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.invoke_support import deploy_python, invoke, server_fixture, unique
from tests.support import Server

server = server_fixture()

# Runs the probe the event names and reports what happened, never raising: the test judges.
PROBES = """
import errno, os, socket, time

def read(path):
    try:
        with open(path, "rb") as f:
            return {"ok": True, "bytes": len(f.read())}
    except OSError as e:
        return {"ok": False, "error": errno.errorcode.get(e.errno, str(e.errno))}

def listdir(path):
    try:
        return {"ok": True, "entries": sorted(os.listdir(path))[:50]}
    except OSError as e:
        return {"ok": False, "error": errno.errorcode.get(e.errno, str(e.errno))}

def connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.0\\r\\n\\r\\n")
            return {"ok": True, "answer": s.recv(100).decode("latin-1")}
    except OSError as e:
        return {"ok": False, "error": type(e).__name__}

def processes():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
            except OSError:
                pass
    return found

def fork_until_refused(limit):
    children, error = [], None
    try:
        for _ in range(limit):
            pid = os.fork()
            if pid == 0:
                try:
                    os.execv("/bin/sleep", ["sleep", "30"])  # small: a Python copy would fill the memory
                finally:
                    os._exit(0)
            children.append(pid)
    except OSError as e:
        error = errno.errorcode.get(e.errno, str(e.errno))
    for pid in children:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return {"forked": len(children), "error": error}

def write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return {"ok": True}
    except OSError as e:
        return {"ok": False, "error": errno.errorcode.get(e.errno, str(e.errno))}

def identity():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "cap_eff": status["CapEff"].strip()}

def handler(event, context):
    probe = event["probe"]
    args = event.get("args", [])
    return globals()[probe](*args)
"""


@pytest.fixture(scope="module")
def probe_function(server: Server) -> str:
    name = unique("probe")
    deploy_python(server.client(), name, PROBES, Timeout=60, MemorySize=1769)  # one vCPU
    return name


def probe(client: Any, name: str, what: str, *args: Any) -> Any:
    response, payload = invoke(client, name, {"probe": what, "args": list(args)})
    assert "FunctionError" not in response, payload
    return payload


@pytest.mark.parametrize("path", ["/etc/shadow", "/root/.bash_history", "/proc/1/environ"])
def test_a_function_cannot_read_host_secrets(client: Any, probe_function: str, path: str) -> None:
    assert probe(client, probe_function, "read", path)["ok"] is False


def test_a_function_cannot_read_the_servers_data(server: Server, client: Any, probe_function: str) -> None:
    data_dir = str(server.data_dir.resolve())
    assert (server.data_dir / "lambdad.db").exists()  # the host does see it

    assert probe(client, probe_function, "read", f"{data_dir}/lambdad.db")["ok"] is False
    assert probe(client, probe_function, "read", f"{data_dir}/secret")["ok"] is False
    key_ring = Path("~/.config/lambdad/keyring").expanduser()  # the server's (default) key ring
    assert key_ring.exists()  # the host does see it
    assert probe(client, probe_function, "read", str(key_ring))["ok"] is False
    assert probe(client, probe_function, "listdir", data_dir)["ok"] is False
    assert probe(client, probe_function, "listdir", f"{data_dir}/code")["ok"] is False


def test_a_function_cannot_read_the_source_tree(client: Any, probe_function: str) -> None:
    assert os.path.exists("/work/main/README.md")  # the host does see it

    assert probe(client, probe_function, "read", "/work/main/README.md")["ok"] is False
    assert probe(client, probe_function, "listdir", "/work")["ok"] is False


def test_a_function_cannot_see_other_functions_code(server: Server, client: Any, probe_function: str) -> None:
    other = unique("other")
    deploy_python(client, other, "SECRET = 'other'\ndef handler(e, c):\n    return 1\n")
    invoke(client, other, {})
    tasks = str((server.data_dir / "tasks").resolve())

    assert probe(client, probe_function, "listdir", tasks)["ok"] is False


def test_a_function_sees_only_its_own_processes(client: Any, probe_function: str) -> None:
    commands = probe(client, probe_function, "processes")

    assert 0 < len(commands) < 10, commands
    assert not any("lambdad" in c and "serve" in c for c in commands), commands
    assert not any("pytest" in c for c in commands), commands


def test_a_bounded_fork_bomb_is_refused_and_the_server_keeps_serving(
    server: Server, client: Any, probe_function: str
) -> None:
    outcome = probe(client, probe_function, "fork_until_refused", 4096)

    assert outcome["error"] == "EAGAIN", outcome
    assert outcome["forked"] < 1100, outcome
    other = unique("after-fork-bomb")
    deploy_python(client, other, "def handler(e, c):\n    return 'alive'\n")
    assert invoke(client, other, {})[1] == "alive"


def test_a_function_cannot_exceed_its_memory(client: Any) -> None:
    name = unique("memory-cap")
    source = "def handler(event, context):\n    return len(bytearray(event['mb'] * 1024 * 1024))\n"
    deploy_python(client, name, source, MemorySize=128, Timeout=30)

    response, payload = invoke(client, name, {"mb": 300})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Runtime exited with error: signal: killed")


@pytest.fixture
def host_service() -> Iterator[int]:
    """A TCP service of the host on every address (loopback included), answering "host secret"."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(b"host secret")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(2)
    listener.close()


def host_addresses() -> list[str]:
    """The host's IPv4 addresses other than loopback (including lambdad's bridge, if up)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound address
        addresses = {probe.getsockname()[0]}
    except OSError:
        addresses = set()
    finally:
        probe.close()
    addresses.add("10.213.0.1")  # the sandbox bridge's gateway
    return sorted(a for a in addresses if not a.startswith("127."))


def test_a_function_cannot_reach_a_host_service(client: Any, probe_function: str, host_service: int) -> None:
    with socket.create_connection(("127.0.0.1", host_service), timeout=2) as own:
        assert own.recv(100) == b"host secret"  # the host does reach it

    for host in ["127.0.0.1", "localhost", *host_addresses()]:
        outcome = probe(client, probe_function, "connect", host, host_service)
        assert outcome["ok"] is False, (host, outcome)


def test_a_function_cannot_reach_lambdads_control_port(
    server: Server, client: Any, probe_function: str
) -> None:
    for host in ["127.0.0.1", *host_addresses()]:
        outcome = probe(client, probe_function, "connect", host, server.port)
        assert outcome["ok"] is False, (host, outcome)


def test_a_function_runs_as_an_unprivileged_user(client: Any, probe_function: str) -> None:
    identity = probe(client, probe_function, "identity")

    assert identity["uid"] != 0
    assert identity["euid"] != 0
    assert identity["gid"] != 0
    assert int(identity["cap_eff"], 16) == 0


def test_var_task_is_read_only_and_tmp_is_writable(client: Any, probe_function: str) -> None:
    assert probe(client, probe_function, "write", "/var/task/injected.py")["ok"] is False
    assert probe(client, probe_function, "write", "/var/task/handler.py")["ok"] is False
    assert probe(client, probe_function, "write", "/tmp/scratch")["ok"] is True
    assert probe(client, probe_function, "read", "/tmp/scratch") == {"ok": True, "bytes": 1}


def test_the_runtime_and_system_directories_are_read_only(client: Any, probe_function: str) -> None:
    for path in ["/var/runtime/injected", "/usr/injected", "/etc/injected", "/opt/injected"]:
        assert probe(client, probe_function, "write", path)["ok"] is False, path
