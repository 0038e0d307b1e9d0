"""Two functions on a real server are two tenants: each runs as a host uid of its own (993 inside),
cannot read the other's keys, and cannot starve it of the per-uid inotify instances and keys.

Against lambdad with one shared uid 993, function B read A's key and A's exhaustion made B's
inotify_init and add_key fail: this test failed there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.attack_support import Victim, assert_unaffected
from tests.e2e.invoke_support import cgroup_dirs, deploy_python, invoke, server_fixture, unique
from tests.sandbox.keyring_probe import PROBES
from tests.support import Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

server = server_fixture()

HANDLER = (
    PROBES
    + """
def handler(event, context):
    action = event["action"]
    if action == "whoami":
        return [os.getuid(), os.getgid(), open("/proc/self/cgroup").read()]
    if action == "add":
        return {ring: add_key("tenant-secret", ring) for ring in RINGS}
    if action == "read":
        return [{str(k): read_key(k) for k in event["keys"]},
                {ring: search("tenant-secret", ring) for ring in RINGS}]
    if action == "exhaust":
        return exhaust()
    if action == "can_still":
        return can_still()
    if action == "hammer":
        # Refused syscalls (a new user namespace) and key churn, as fast as it can, for a while.
        import time
        deadline, calls, refused = time.monotonic() + event["seconds"], 0, 0
        while time.monotonic() < deadline:
            refused += _libc.syscall(272, 0x10000000) < 0  # unshare(CLONE_NEWUSER)
            add_key(f"churn-{calls % 50}", "session")
            calls += 1
        return {"calls": calls, "refused": refused}
"""
)


def call(client: Any, name: str, **event: Any) -> Any:
    response, payload = invoke(client, name, event)
    assert "FunctionError" not in response, payload
    return payload


def host_uids(function_name: str) -> set[int]:
    """Host uids of the function's processes, read from the host's /proc (bwrap's own, root, aside)."""
    uids = set()
    for directory in cgroup_dirs(function_name):
        if directory.parts[-3] != "pids":
            continue
        for pid in (directory / "cgroup.procs").read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            uids.add(int(status.split("Uid:\t")[1].split()[0]))
    return uids - {0}


def test_two_functions_are_two_tenants(server: Server):
    client = server.client()
    a, b = unique("tenant-a"), unique("tenant-b")
    for name in (a, b):
        deploy_python(client, name, HANDLER)

    # Each sees AWS's 993/990 and a cgroup root of its own, and runs as its own host uid.
    for name in (a, b):
        uid, gid, cgroups = call(client, name, action="whoami")
        assert (uid, gid) == (993, 990)
        assert {line.split(":", 2)[2] for line in cgroups.splitlines()} == {"/"}
    uids_a, uids_b = host_uids(a), host_uids(b)
    assert len(uids_a) == 1 and len(uids_b) == 1 and not uids_a & uids_b
    assert 993 not in uids_a | uids_b

    # B cannot read A's keys, whichever keyring A put them in.
    keys = call(client, a, action="add")
    assert all(isinstance(key, int) for key in keys.values()), keys
    reads, searches = call(client, b, action="read", keys=list(keys.values()))
    assert "secret" not in reads.values(), reads
    assert set(searches.values()) <= {"ENOKEY", "EACCES"}, searches

    # A holds every inotify instance and key its uid may have (its warm environment keeps them)...
    used = call(client, a, action="exhaust")
    assert used["inotify_error"] == "EMFILE" and used["key_error"] == "EDQUOT", used
    # ...and B is not affected.
    assert call(client, b, action="can_still") == {"inotify": "ok", "add_key": "ok"}


def test_hammering_refused_syscalls_and_keys_leaves_other_functions_alone(
    server: Server, record_property: Any
):
    client = server.client(read_timeout=60)
    attacker = unique("hammer")
    # At the default 128 MB its CPU quota bounds it, as on AWS: what is measured is what the refused
    # syscalls and the key churn do to the kernel and lambdad, not a contest for the 2 cores.
    deploy_python(client, attacker, HANDLER)
    victim = Victim(server)
    victim.baseline()
    with victim.measuring() as samples:
        result = call(client, attacker, action="hammer", seconds=3)
    assert result["calls"] > 0 and result["refused"] == result["calls"], result
    record_property("summary_hammer_calls", str(result))
    assert_unaffected(victim, samples, record_property)
