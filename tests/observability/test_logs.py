"""Log streams: the output budget, the group's size bound (oldest streams removed), and writes that
never raise when the disk refuses them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lambdad.observability.logs import LogLimits, LogStore, OutputBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_grants_its_burst_then_its_rate() -> None:
    clock = Clock()
    budget = OutputBudget(rate=100, burst=1000, clock=clock)
    assert budget.admit(600) == 600
    assert budget.admit(600) == 400  # part of a chunk fits
    assert budget.admit(10) == 0
    clock.now = 0.5
    assert budget.admit(600) == 50
    clock.now = 100
    assert budget.admit(5000) == 1000  # never more than the burst


def test_the_budget_says_when_it_is_short_of_a_chunk_until_it_refills() -> None:
    clock = Clock()
    budget = OutputBudget(rate=100, burst=100, clock=clock)
    assert not budget.short_of(100)
    assert budget.admit(150) == 100
    assert budget.short_of(1)
    clock.now = 0.5
    assert budget.short_of(60) and not budget.short_of(50)
    clock.now = 10
    assert not budget.short_of(10**6)  # a full bucket is never short, whatever the chunk
    assert not OutputBudget(rate=0, burst=0).short_of(10**9)


def test_a_zero_rate_is_no_limit() -> None:
    assert OutputBudget(rate=0, burst=0).admit(10**9) == 10**9


def test_the_group_stays_under_its_bound_by_removing_the_oldest_streams(tmp_path: Path) -> None:
    store = LogStore(tmp_path, LogLimits(rate_bytes=0, burst_bytes=0, group_max_bytes=100_000))
    group = "/aws/lambda/noisy"
    for n in range(10):
        stream = store.open_stream(group, f"stream-{n}")
        for _ in range(30):
            stream.write("x" * 1000)
        stream.close()
    sizes = [path.stat().st_size for path in (tmp_path / "%2Faws%2Flambda%2Fnoisy").iterdir()]
    assert sum(sizes) <= 100_000
    assert store.streams(group)[-1] == "stream-9"  # the newest stays
    assert "stream-0" not in store.streams(group)


def test_a_stream_whose_file_was_removed_starts_a_new_one(tmp_path: Path) -> None:
    store = LogStore(tmp_path, LogLimits(rate_bytes=0, burst_bytes=0, group_max_bytes=10_000))
    stream = store.open_stream("g", "only")
    for _ in range(30):  # the only stream passes the bound: retention removes it while it is open
        stream.write("y" * 1000)
        stream.flush()
    stream.write("after")
    stream.close()
    assert [event.message for event in store.events("g")][-1] == "after"


def test_a_full_disk_loses_events_without_raising_and_the_file_stays_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LogStore(tmp_path)
    stream = store.open_stream("g", "s")
    stream.write("before")
    stream.flush()
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:  # part of a line reaches the file, then no room
        monkeypatch.setattr(os, "write", failing)
        return real_write(fd, data[: len(data) // 2])

    def failing(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    stream.write("lost, and long enough to be cut in half")
    stream.flush()
    stream.write("lost too")
    stream.flush()
    assert stream.lost_events == 2 and store.lost_events == 2
    monkeypatch.setattr(os, "write", real_write)
    stream.write("after")
    stream.close()
    assert [event.message for event in store.events("g")] == ["before", "after"]
