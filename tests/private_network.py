"""Listeners on private (and one public-like) addresses, in a network namespace of the test's own.

A sandbox on the DEFAULT network must not reach 10/8, 172.16/12 or 192.168/16 unless the operator
allowed the range; to show it, the test needs something listening there. ``PrivateListeners`` makes
a named network namespace joined to the host by a veth pair whose host end has one address in each
of those ranges plus one in 198.18/15 (the benchmarking range, not private: the control that
forwarding as such still works), and runs a TCP server in it that answers every connection with
``b"priv"``. Everything is removed on ``close()``.
"""

from __future__ import annotations

import random
import secrets
import subprocess
import sys
from dataclasses import dataclass, field

#: A one-line server run inside the namespace: accepts forever, answers b"priv".
LISTENER = """
import socket, sys
server = socket.create_server(('0.0.0.0', 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    conn.sendall(b'priv')
    conn.close()
"""

#: Function or sandbox code: tries each of TARGETS (host, port) and says how it went, as JSON.
# A refusal comes at once (a TCP reset or ICMP from nftables); a timeout is tried again, twice: on this
# shared machine a connection to the listeners' namespace sometimes stalls for seconds, whatever the rules.
PROBE = """
import errno, json, socket
def connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            return 'ok ' + conn.recv(16).decode()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, 'timeout') if exc.errno else 'timeout'
def probe(targets):
    results = {}
    for host, port in targets:
        for _ in range(3):
            results[host] = connect(host, port)
            if results[host] != 'timeout':
                break
    return results
"""


@dataclass
class PrivateListeners:
    """A netns with a listener on 10.201.N.2, 172.31.N.2, 192.168.N.2 and 198.18.N.2 (N random)."""

    name: str = field(default_factory=lambda: f"lbdpn{secrets.token_hex(3)}")
    subnet: int = field(default_factory=lambda: random.randrange(1, 255))
    port: int = 0
    _server: subprocess.Popen[str] | None = None
    _others: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def private(self) -> list[str]:
        return [f"10.201.{self.subnet}.2", f"172.31.{self.subnet}.2", f"192.168.{self.subnet}.2"]

    @property
    def public(self) -> str:
        return f"198.18.{self.subnet}.2"

    @property
    def targets(self) -> list[tuple[str, int]]:
        return [(address, self.port) for address in [*self.private, self.public]]

    def start(self) -> PrivateListeners:
        host_end, inner_end = f"{self.name}h", f"{self.name}i"
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end, "netns", self.name)
            for prefix in (*(a.rsplit(".", 1)[0] for a in self.private), self.public.rsplit(".", 1)[0]):
                _ip("addr", "add", f"{prefix}.1/24", "dev", host_end)
                _ip("-n", self.name, "addr", "add", f"{prefix}.2/24", "dev", inner_end)
            _ip("link", "set", host_end, "up")
            _ip("-n", self.name, "link", "set", inner_end, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            self._server = subprocess.Popen(
                ["ip", "netns", "exec", self.name, sys.executable, "-c", LISTENER],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self._server.stdout is not None
            self.port = int(self._server.stdout.readline())
        except BaseException:
            self.close()
            raise
        return self

    def listen_again(self) -> int:
        """Another listener like the first, on another port (e.g. to tell a port a policy refuses from
        one nobody listens on); its port."""
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", LISTENER],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._others.append(server)
        assert server.stdout is not None
        return int(server.stdout.readline())

    def close(self) -> None:
        for server in [self._server, *self._others]:
            if server is not None:
                server.kill()
                server.wait()
        # Deleting the namespace deletes the veth pair with it.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)

    def __enter__(self) -> PrivateListeners:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)
