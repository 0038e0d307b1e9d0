"""Sandbox networking: entering network namespaces, and the NATed host bridge.

``NetnsThread`` is one dedicated thread that can briefly enter a sandbox's network
namespace (``setns`` only affects the calling thread) to create the Runtime API listening
socket and configure the sandbox's interface there. Sockets keep the namespace they were
created in, so the host then ``accept()``s connections made inside the sandbox directly.

``Bridge`` gives ``NetworkMode.DEFAULT`` sandboxes outbound access like a Lambda function
outside a VPC: a veth pair per sandbox on the host bridge (an *isolated* bridge port, so
sandboxes cannot reach each other), and an nftables table that masquerades their traffic,
drops anything they address to the host itself and refuses private address ranges (the
host's LAN, cloud metadata, other tenants' networks) except DNS to the host's resolvers and
what the operator allowed. The bridge and the table are shared by every lambdad process on
the machine: set-up and tear-down are serialised with a lock file and the last one out
removes them.

A sandbox with an egress policy (a function's security groups' egress rules) is narrowed further by
a table of its own kind (:mod:`lambdad.sandbox.egress`).

Each sandbox's address is a lease file naming its owner (pid and start time, see
:mod:`lambdad.sandbox.owners`); leases of owners that died (a SIGKILLed server) are reclaimed
with their veths and allowances when a factory starts, or when the subnet runs out.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import fcntl
import hashlib
import ipaddress
import logging
import os
import random
import shutil
import socket
import subprocess
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from lambdad.sandbox import owners
from lambdad.sandbox.api import EgressRule, SandboxUnavailable
from lambdad.sandbox.egress import EgressTable
from lambdad.sandbox.netlink import Rtnl

__all__ = ["PRIVATE_RANGES", "Bridge", "Lease", "NetnsThread", "listen_tcp"]

#: What a DEFAULT-network sandbox may not reach unless the operator allows it: RFC 1918, carrier-grade
#: NAT (RFC 6598) and link-local (cloud metadata services live at 169.254.169.254). Sandboxes have no
#: IPv6 at all (the bridge has it disabled and the forward chain drops it), so fc00::/7 and fe80::/10
#: are unreachable with the rest of IPv6.
PRIVATE_RANGES = ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16")

log = logging.getLogger(__name__)

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, nstype: int) -> None:
    # os.setns only exists from Python 3.12.
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def listen_tcp(host: str, port: int, *, freebind: bool = False) -> socket.socket:
    """A listening TCP socket in the current thread's network namespace.

    ``freebind`` allows binding an address not (yet) configured: in a fresh sandbox netns,
    bubblewrap brings loopback up concurrently with us, and the socket must not depend on
    who wins. Connections to the address are accepted once it exists.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if freebind:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class NetnsThread:
    """A single worker thread that runs blocking sandbox plumbing, in the host netns or a sandbox's.

    Sandboxes are also spawned from this thread: ``--die-with-parent`` (PR_SET_PDEATHSIG)
    fires when the *thread* that forked bubblewrap exits, so it must be one that lives as
    long as the factory.
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambdad-netns")
        self._host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._broken = False

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the worker thread, in the host network namespace."""
        return self._pool.submit(fn)

    def run_in(self, pidfd: int, fn: Callable[[], T]) -> T:
        """Run ``fn`` inside the network namespace of process ``pidfd``. Worker thread only."""
        if self._broken:
            raise OSError(errno.EIO, "netns worker thread is stuck in a foreign namespace")
        _setns(pidfd, CLONE_NEWNET)
        try:
            return fn()
        finally:
            try:
                _setns(self._host_ns, CLONE_NEWNET)
            except OSError:
                # Never run host work in a sandbox's namespace: refuse everything from now on.
                self._broken = True
                log.critical("cannot return the netns worker thread to the host namespace")
                raise

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        os.close(self._host_ns)


class Lease:
    """One sandbox's place on the bridge: its veth and IPv4 address."""

    def __init__(
        self, veth: str, address: str, lease_file: Path, egress: tuple[EgressRule, ...] | None = None
    ) -> None:
        self.veth = veth
        self.address = address
        self.lease_file = lease_file
        #: The sandbox's egress policy (its chain in the table), None if it has none.
        self.egress = egress


class Bridge:
    """The shared host bridge + NAT for ``NetworkMode.DEFAULT``. All methods block: worker thread only."""

    def __init__(
        self,
        name: str = "lambdad0",
        subnet: str = "10.213.0.0/16",
        state_dir: Path | None = None,
        allow_private: Sequence[str] = (),
    ):
        if len(name) > 15:
            raise ValueError(f"bridge name too long: {name!r}")
        self.name = name
        self.network = ipaddress.IPv4Network(subnet)
        #: Private ranges this process's sandboxes may reach (the operator's allowance): kept per
        #: sandbox address in the shared table, since other lambdad processes may allow other ones.
        # Merged where they overlap: the interval set refuses overlapping elements.
        networks = (ipaddress.IPv4Network(c, strict=False) for c in allow_private)
        self.allow_private = tuple(str(n) for n in ipaddress.collapse_addresses(networks))
        self.gateway = str(self.network.network_address + 1)
        self.state_dir = state_dir or Path("/run/lambdad")
        self._lock_path = self.state_dir / f"{name}.lock"
        self._ready = self.state_dir / f"{name}.ready"
        self._leases = self.state_dir / f"{name}.leases"
        # ip_forward is machine-wide and shared by every bridge: saved once, restored by the
        # last bridge to go, under a lock common to all bridges.
        self._forward_orig = self.state_dir / "ip_forward.orig"
        self._forward_lock = self.state_dir / "ip_forward.lock"
        self._rtnl: Rtnl | None = None
        self._checked = False
        self._egress = EgressTable(name)
        self.mtu = _uplink_mtu()
        # The ready file names the ruleset it was made with: a table left by another version of
        # lambdad is replaced rather than trusted to have this version's rules.
        self._version = hashlib.sha256(self._ruleset().encode()).hexdigest()[:16]

    # -- shared set-up ---------------------------------------------------------------------

    @contextmanager
    def _locked(self, mode: int, path: Path | None = None) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path or self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def _host_rtnl(self) -> Rtnl:
        if self._rtnl is None:
            self._rtnl = Rtnl()
        return self._rtnl

    def _is_ready(self) -> bool:
        try:
            made_with = self._ready.read_text().split()[1:2]
        except FileNotFoundError:
            return False
        return made_with == [self._version] and Path(f"/sys/class/net/{self.name}").exists()

    def _setup(self, force: bool = False) -> None:
        """Create the bridge, NAT rules and forwarding. Caller holds the exclusive lock."""
        if self._is_ready() and not force:
            return
        nft = shutil.which("nft")
        if nft is None:
            raise SandboxUnavailable(
                "NetworkMode.DEFAULT needs nftables for NAT: run 'apt-get install nftables' "
                "(or use NetworkMode.NONE)"
            )
        _nft(self._ruleset())
        rtnl = self._host_rtnl()
        with suppress(FileExistsError):
            rtnl.add_bridge(self.name, self.mtu)
        # No IPv6 on the bridge: a link-local address would expose the host's services.
        Path(f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6").write_text("1")
        with suppress(FileExistsError):
            rtnl.add_address(socket.if_nametoindex(self.name), self.gateway, self.network.prefixlen)
        rtnl.set_up(self.name)
        self._leases.mkdir(exist_ok=True)
        with self._locked(fcntl.LOCK_EX, self._forward_lock):
            forward = Path("/proc/sys/net/ipv4/ip_forward")
            if not self._forward_orig.exists():
                self._forward_orig.write_text(forward.read_text())
            # Sandboxes' packets must be routed out: this turns the host into a router, which
            # is why the forward chain above only lets the bridge's own traffic through.
            forward.write_text("1")
            # Written under the same lock as the teardown's "any bridge left?" check.
            self._ready.write_text(f"{os.getpid()} {self._version}\n")
        log.info("sandbox bridge %s up: %s via %s, NAT by nftables", self.name, self.network, self.gateway)

    def _ruleset(self) -> str:
        b, net = self.name, self.network
        private = ", ".join(PRIVATE_RANGES)
        # "table …; delete table …; table … {…}" replaces the table atomically, whether or not
        # a previous (crashed) lambdad left one behind. In the forward chain, order matters: no
        # sandbox-to-sandbox traffic; DNS to the host's resolvers (often private: a VPC's .2, a
        # LAN router) as a sandbox's resolv.conf is the host's; then what an operator allowed a
        # sandbox (its address . the allowed range); then private ranges are refused so that a
        # connect fails at once rather than timing out: TCP with a reset (ECONNREFUSED), the rest
        # with ICMP admin-prohibited (which the kernel rate-limits to a burst of 6, then 1/s per
        # sandbox: a UDP prober soon gets silence); the rest goes out.
        return f"""
table inet {b}
delete table inet {b}
table inet {b} {{
  set private {{
    type ipv4_addr; flags interval;
    elements = {{ {private} }}
  }}
  set resolvers {{
    type ipv4_addr;
  }}
  set allowed {{
    type ipv4_addr . ipv4_addr; flags interval;
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {net} oifname != "{b}" masquerade
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{b}" oifname "{b}" drop
    iifname "{b}" ip daddr @resolvers meta l4proto {{ tcp, udp }} th dport 53 accept
    iifname "{b}" ip saddr . ip daddr @allowed accept
    iifname "{b}" ip daddr @private meta l4proto tcp reject with tcp reset
    iifname "{b}" ip daddr @private reject with icmp type admin-prohibited
    iifname "{b}" meta nfproto ipv4 accept
    iifname "{b}" drop
    oifname "{b}" ct state established,related accept
    oifname "{b}" drop
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{b}" ct state established,related accept
    iifname "{b}" drop
  }}
}}
"""

    def _check_script(self) -> str:
        """Once per process: fails unless the table has this version's sets; lets DNS through to
        the host's private resolvers (its resolv.conf is the sandboxes' too, and may have changed)."""
        private = [ipaddress.IPv4Network(r) for r in PRIVATE_RANGES]
        resolvers = [a for a in host_resolvers() if any(a in network for network in private)]
        script = f"list set inet {self.name} allowed\n"
        if resolvers:
            script += f"add element inet {self.name} resolvers {{ {', '.join(map(str, resolvers))} }}\n"
        return script

    def teardown(self) -> bool:
        """Remove bridge, rules and leases if no sandbox (of any process) is attached."""
        with self._locked(fcntl.LOCK_EX):
            ports = Path(f"/sys/class/net/{self.name}/brif")
            if ports.exists() and any(ports.iterdir()):
                return False
            self._ready.unlink(missing_ok=True)
            self._host_rtnl().delete_link(self.name)
            nft = shutil.which("nft")
            if nft is not None:
                for table in (self.name, self._egress.name):
                    subprocess.run([nft, "delete", "table", "inet", table], capture_output=True, check=False)
            with self._locked(fcntl.LOCK_EX, self._forward_lock):
                others = list(self.state_dir.glob("*.ready"))
                if not others and self._forward_orig.exists():
                    Path("/proc/sys/net/ipv4/ip_forward").write_text(self._forward_orig.read_text())
                    self._forward_orig.unlink()
            shutil.rmtree(self._leases, ignore_errors=True)
            log.info("sandbox bridge %s removed", self.name)
            return True

    def close(self) -> None:
        if self._rtnl is not None:
            self._rtnl.close()
            self._rtnl = None

    # -- per sandbox -----------------------------------------------------------------------

    def attach(self, sandbox_id: str, pid: int, egress: tuple[EgressRule, ...] | None = None) -> Lease:
        """Give process ``pid``'s (fresh) netns an ``eth0`` on the bridge; returns its lease.
        With ``egress``, the sandbox may open only the connections those rules allow.

        The caller then configures the inside with :meth:`configure_inside`, from within the
        sandbox's namespace.
        """
        reclaimed = False
        while True:
            try:
                with self._locked(fcntl.LOCK_SH):
                    if self._is_ready():
                        return self._attach(sandbox_id, pid, egress)
            except OSError as exc:
                # Out of addresses: dead servers' leases may be what fills the subnet.
                if exc.errno != errno.EADDRNOTAVAIL or reclaimed or not self.reclaim_stale():
                    raise
                reclaimed = True
                continue
            self.ensure()

    def ensure(self) -> None:
        """Set up the bridge and NAT unless already done (by any process).

        Raises :class:`SandboxUnavailable` if this machine cannot do it.
        """
        with self._locked(fcntl.LOCK_SH):
            ready = self._is_ready()
        if not ready:
            self._set_up(force=False)
        if not self._checked:
            try:
                _nft(self._check_script())
            except subprocess.CalledProcessError:
                # The ready file says this version's table, but the table is not (a process of
                # another lambdad version replaced it): this version's rules again.
                self._set_up(force=True)
                try:
                    _nft(self._check_script())
                except subprocess.CalledProcessError as exc:
                    raise SandboxUnavailable(f"nft failed: {exc.stderr.strip()}") from exc
            self._checked = True

    def _set_up(self, force: bool) -> None:
        with self._locked(fcntl.LOCK_EX):
            try:
                self._setup(force)
            except subprocess.CalledProcessError as exc:
                raise SandboxUnavailable(f"nft failed: {exc.stderr.strip()}") from exc
            except OSError as exc:
                raise SandboxUnavailable(f"cannot set up bridge {self.name}: {exc}") from exc

    def _attach(self, sandbox_id: str, pid: int, egress: tuple[EgressRule, ...] | None) -> Lease:
        lease = self._allocate(sandbox_id, egress)
        try:
            if self.allow_private:
                # Before the sandbox has an interface: it never runs without its allowance.
                self._allowance("add", lease.address, self.allow_private)
            if egress is not None:
                # Likewise: never a moment on the bridge without its policy.
                self._ensure_egress_table()
                resolvers = [str(a) for a in host_resolvers()]
                _nft(self._egress.policy(lease.address, egress, resolvers))
            rtnl = self._host_rtnl()
            master = int(Path(f"/sys/class/net/{self.name}/ifindex").read_text())
            rtnl.add_veth_into(lease.veth, self.mtu, master, "eth0", pid)
            rtnl.isolate_bridge_port(lease.veth)
            rtnl.set_up(lease.veth)
        except BaseException:
            self.detach(lease)
            raise
        return lease

    def configure_inside(self, lease: Lease) -> None:
        """Address, link and default route for ``eth0``; the current thread must be in the sandbox's netns."""
        with Rtnl() as rtnl:
            index = socket.if_nametoindex("eth0")
            rtnl.add_address(index, lease.address, self.network.prefixlen)
            rtnl.set_up("eth0")
            rtnl.add_default_route(self.gateway, index)

    def detach(self, lease: Lease) -> None:
        """Delete the veth pair and free the address. Idempotent; callable from any thread.

        Deleting a veth takes ~20 ms (the kernel waits for RCU grace periods), so it runs
        off the worker thread, on its own netlink socket, not to hold up sandbox creation.
        """
        if self.allow_private:
            # Before the lease goes (the next holder of the address must not inherit the allowance)
            # and while the veth keeps the table from being torn down. It fails only if there is
            # nothing to delete: detached before, or the add failed.
            with suppress(subprocess.CalledProcessError):
                self._allowance("delete", lease.address, self.allow_private)
        if lease.egress is not None:
            # Likewise before the lease goes: the address's next holder must not inherit the policy.
            with suppress(subprocess.CalledProcessError):
                _nft(self._egress.removal(lease.address))
        with Rtnl() as rtnl:
            rtnl.delete_link(lease.veth)
        lease.lease_file.unlink(missing_ok=True)

    def replace_egress(self, lease: Lease, rules: tuple[EgressRule, ...]) -> None:
        """Give the sandbox of ``lease`` (made with a policy) the policy ``rules``. Callable from any
        thread; raises CalledProcessError if the sandbox is gone (its chain with it)."""
        if lease.egress is None:
            raise ValueError(f"the sandbox at {lease.address} has no egress policy to replace")
        _nft(self._egress.rules(lease.address, rules, [str(a) for a in host_resolvers()]))
        lease.egress = rules

    def _ensure_egress_table(self) -> None:
        """Make the egress table unless it exists. Under the bridge's shared lock (so no teardown runs),
        and its own exclusive one (so no other process makes it at the same time)."""
        with self._locked(fcntl.LOCK_EX, self.state_dir / f"{self.name}.egress.lock"):
            listed = subprocess.run(
                ["nft", "list", "chain", "inet", self._egress.name, "forward"],
                capture_output=True,
                check=False,
            )
            if listed.returncode != 0:
                _nft(self._egress.creation())

    def _allowance(self, verb: str, address: str, ranges: Sequence[str]) -> None:
        # One nft process per sandbox start and end (a few ms), paid only by servers that allow
        # private ranges; libnftables has no binding in lambdad's environment.
        elements = ", ".join(f"{address} . {cidr}" for cidr in ranges)
        _nft(f"{verb} element inet {self.name} allowed {{ {elements} }}")

    def veth_name(self, address: str) -> str:
        """The host-side veth of the sandbox at ``address``.

        It must be unique machine-wide and at most 15 bytes: derived from the bridge and the
        address, which is unique on it.
        """
        offset = int(ipaddress.IPv4Address(address)) - int(self.network.network_address)
        tag = zlib.crc32(self.name.encode()) & 0xFF
        return f"lbd{tag:02x}{offset:06x}"

    def _allocate(self, sandbox_id: str, egress: tuple[EgressRule, ...] | None = None) -> Lease:
        hosts = self.network.num_addresses - 3  # network, gateway, broadcast
        for _ in range(64):
            offset = random.randrange(hosts) + 2
            address = str(self.network.network_address + offset)
            path = self._leases / address
            try:
                # O_EXCL makes the lease file the allocation: safe across processes.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            # The owner and its allowance, for whoever reclaims the lease if this process dies.
            # ("egress" if it has a chain of its own, for the same reason.)
            allowance = ",".join(self.allow_private) or "-"
            policy = " egress" if egress is not None else ""
            os.write(fd, f"{owners.me()} {sandbox_id} {allowance}{policy}\n".encode())
            os.close(fd)
            return Lease(self.veth_name(address), address, path, egress)
        raise OSError(errno.EADDRNOTAVAIL, f"no free address in {self.network}")

    def reclaim_stale(self) -> int:
        """Free the leases of processes that died (veth, allowance, file); returns how many.

        Runs under the exclusive lock while allocations hold the shared one, so a lease file being
        written is never seen half-made: an empty or garbled one was left by a crash too.
        """
        reclaimed = 0
        with self._locked(fcntl.LOCK_EX):
            try:
                # Read under the lock: another server's teardown removes the directory under it too.
                paths = list(self._leases.iterdir())
            except FileNotFoundError:
                return 0
            for path in paths:
                try:
                    fields = path.read_text().split()
                    veth = self.veth_name(path.name)
                except (FileNotFoundError, ValueError):
                    continue
                if fields and owners.alive(fields[0]):
                    continue
                with suppress(OSError):  # gone with the sandbox's netns, usually
                    self._host_rtnl().delete_link(veth)
                if len(fields) > 2 and fields[2] != "-":
                    with suppress(subprocess.CalledProcessError, SandboxUnavailable):  # table gone since
                        self._allowance("delete", path.name, fields[2].split(","))
                if len(fields) > 3 and fields[3] == "egress":
                    with suppress(subprocess.CalledProcessError, SandboxUnavailable):
                        _nft(self._egress.removal(path.name))
                path.unlink(missing_ok=True)
                reclaimed += 1
        if reclaimed:
            log.info("reclaimed %d address lease(s) of sandboxes whose server died", reclaimed)
        return reclaimed


def _nft(script: str) -> None:
    """Run an nftables script; raises CalledProcessError (with nft's stderr) if it fails."""
    nft = shutil.which("nft")
    if nft is None:
        raise SandboxUnavailable("nftables is not installed: run 'apt-get install nftables'")
    subprocess.run([nft, "-f", "-"], input=script, text=True, check=True, capture_output=True)


def host_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[ipaddress.IPv4Address]:
    """The IPv4 name servers of the host's resolv.conf (which sandboxes see as their own)."""
    found = []
    with suppress(OSError):
        for line in resolv_conf.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                with suppress(ValueError):
                    found.append(ipaddress.IPv4Address(fields[1]))
    return found


def _uplink_mtu() -> int:
    """MTU of the default route's interface, so sandboxes never send oversized packets."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000":
                return min(1500, int(Path(f"/sys/class/net/{fields[0]}/mtu").read_text()))
    except (OSError, ValueError):
        pass
    return 1500
