"""The disk reserve: held while there is room, given up once, taken back when room returns."""

from __future__ import annotations

from pathlib import Path

from lambdad.store.reserve import DiskReserve


def test_the_reserve_is_held_released_once_and_taken_back(tmp_path: Path) -> None:
    reserve = DiskReserve(tmp_path / "reserve", size=64 * 1024)
    assert reserve.hold()
    assert (tmp_path / "reserve").stat().st_blocks * 512 >= 64 * 1024  # allocated, not sparse
    assert reserve.release()
    assert not (tmp_path / "reserve").exists()
    assert not reserve.release()  # nothing left to give
    assert reserve.hold() and reserve.held


def test_a_reserve_left_by_an_earlier_run_counts_as_held(tmp_path: Path) -> None:
    DiskReserve(tmp_path / "reserve", size=4096).hold()
    assert DiskReserve(tmp_path / "reserve", size=4096).held


def test_no_reserve_is_taken_where_the_disk_lacks_twice_its_size(tmp_path: Path) -> None:
    reserve = DiskReserve(tmp_path / "reserve", size=1 << 60)
    assert not reserve.hold()
    assert not (tmp_path / "reserve").exists()
