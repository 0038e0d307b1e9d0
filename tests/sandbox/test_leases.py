"""The machine-wide lease allocator behind sandbox host uids (flock'd files, reclaimed when a holder dies)."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lambdad.sandbox.leases import LeasePool


def test_a_number_is_held_once_until_released(tmp_path: Path):
    pool = LeasePool(tmp_path, 100, 2)
    first, second = pool.acquire("a"), pool.acquire("b")
    assert {first.number, second.number} == {100, 101}
    with pytest.raises(OSError) as refused:
        pool.acquire("c")
    assert refused.value.errno == errno.EAGAIN
    assert pool.held_elsewhere(first.number)
    first.release()
    first.release()  # idempotent
    assert not pool.held_elsewhere(first.number) and first.path.read_text() == ""
    assert pool.acquire("d").number == first.number


def test_a_dead_holders_number_comes_back_only_when_reclaimable(tmp_path: Path):
    holder = f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pathlib import Path
        from lambdad.sandbox.leases import LeasePool
        lease = LeasePool(Path({str(tmp_path)!r}), 7, 1).acquire("doomed")
        os._exit(0)  # dies holding it: no release
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(holder)], check=True)
    assert (tmp_path / "7").read_text().split()[1] == "doomed"  # the dead holder's trace
    asked: list[int] = []

    def never(number: int) -> bool:
        asked.append(number)
        return False

    with pytest.raises(OSError):
        LeasePool(tmp_path, 7, 1, reclaimable=never).acquire("x")
    assert asked and set(asked) == {7}
    lease = LeasePool(tmp_path, 7, 1, reclaimable=lambda number: True).acquire("heir")
    assert lease.number == 7 and lease.path.read_text().split()[1] == "heir"
