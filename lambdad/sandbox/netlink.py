"""Just enough rtnetlink to wire a sandbox into the host bridge, in microseconds.

Running ``ip`` costs ~5 ms per call on the target machines and a sandbox needs two calls
(one per network namespace); speaking netlink directly costs a few tens of microseconds.
Only the handful of messages lambdad needs are implemented; errors surface as ``OSError``
with the kernel's errno.

A netlink socket talks to the network namespace of the thread that *created* it, which is
how one process configures both the host and a sandbox namespace.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct

__all__ = ["Rtnl"]

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLA_F_NESTED = 0x8000

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5
IFLA_BRPORT_ISOLATED = 33
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_OIF = 4
RTA_GATEWAY = 5

IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _nested(kind: int, *attrs: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(attrs))


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Rtnl:
    """A NETLINK_ROUTE socket bound to the network namespace current at construction."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = itertools.count(1)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, kind: int, flags: int, body: bytes) -> None:
        seq = next(self._seq)
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
        self._sock.send(header + body)
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, msg_type, _, msg_seq, _ = _NLMSGHDR.unpack_from(data, offset)
                if msg_type == NLMSG_ERROR and msg_seq == seq:
                    (error,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                    if error:
                        raise OSError(-error, f"rtnetlink: {os.strerror(-error)}")
                    return
                offset += max(length + (-length % 4), _NLMSGHDR.size)

    # -- links -----------------------------------------------------------------------------

    def add_bridge(self, name: str, mtu: int) -> None:
        """Create bridge ``name``; ``FileExistsError`` if it already exists."""
        info = _nested(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge"))
        body = _ifinfo() + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_MTU, struct.pack("=I", mtu)) + info
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_veth_into(self, name: str, mtu: int, master: int, peer: str, peer_pid: int) -> None:
        """Create veth ``name`` on bridge ``master`` whose peer ``peer`` lives in ``peer_pid``'s netns."""
        peer_info = (
            _ifinfo()
            + _attr(IFLA_IFNAME, _name(peer))
            + _attr(IFLA_MTU, struct.pack("=I", mtu))
            + _attr(IFLA_NET_NS_PID, struct.pack("=I", peer_pid))
        )
        info = _nested(
            IFLA_LINKINFO,
            _attr(IFLA_INFO_KIND, b"veth"),
            _nested(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info)),
        )
        body = (
            _ifinfo()
            + _attr(IFLA_IFNAME, _name(name))
            + _attr(IFLA_MTU, struct.pack("=I", mtu))
            + _attr(IFLA_MASTER, struct.pack("=I", master))
            + info
        )
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def isolate_bridge_port(self, name: str) -> None:
        """Mark bridge port ``name`` isolated: it can talk to the bridge, never to other isolated ports."""
        info = _nested(
            IFLA_LINKINFO,
            _attr(IFLA_INFO_SLAVE_KIND, b"bridge"),
            _nested(IFLA_INFO_SLAVE_DATA, _attr(IFLA_BRPORT_ISOLATED, b"\x01")),
        )
        self._request(RTM_NEWLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(name)) + info)

    def set_up(self, name: str) -> None:
        """Bring link ``name`` up."""
        self._request(RTM_NEWLINK, 0, _ifinfo(flags=IFF_UP, change=IFF_UP) + _attr(IFLA_IFNAME, _name(name)))

    def delete_link(self, name: str) -> bool:
        """Delete link ``name`` (both ends, for a veth); False if it did not exist."""
        try:
            self._request(RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(name)))
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # -- addresses and routes --------------------------------------------------------------

    def add_address(self, index: int, address: str, prefix: int) -> None:
        """Add IPv4 ``address/prefix`` to interface ``index``; ``FileExistsError`` if present."""
        packed = socket.inet_aton(address)
        body = (
            _IFADDRMSG.pack(socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index)
            + _attr(IFA_LOCAL, packed)
            + _attr(IFA_ADDRESS, packed)
        )
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, gateway: str, index: int) -> None:
        """Route everything via ``gateway`` on interface ``index``."""
        body = (
            _RTMSG.pack(
                socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
            )
            + _attr(RTA_GATEWAY, socket.inet_aton(gateway))
            + _attr(RTA_OIF, struct.pack("=I", index))
        )
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)
