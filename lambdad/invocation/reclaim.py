"""Reclaiming code nothing uses any more: zips, unpacked trees and merged layers, without a restart.

Code stays while a record names it (a function version, the layers a function keeps, a layer version)
or something holds it (``store.holds``: a create between storing and committing, a preparation or cold
start while it unpacks, a live environment). A pass runs on one background thread whenever a function's
code or configuration changed or it was deleted, a layer version was deleted, or the last holder of code
found unused let go of it (an environment of an old version drained); passes asked for while one is
queued are merged into it.

A pass lists what is on disk, condemns the unheld part, reads what the records name, then, under the
holds' lock, renames what is still condemned and unnamed out of the way (a cold start of the same digest
either held it first and keeps it, or finds it gone and unpacks it afresh) and deletes it afterwards.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lambdad.environment import ExecutionEnvironment, FunctionImage
from lambdad.invocation.images import OPT_KEY_PREFIX, ImageBuilder, merged_name
from lambdad.invocation.pool import EnvironmentMaker, PoolListener
from lambdad.store import CodeStore, Database
from lambdad.store import functions as function_records

log = logging.getLogger(__name__)

_ASIDE = ".reclaimed-"


class CodeReclaimer:
    """Removes unused code of one data directory."""

    def __init__(self, database: Database, code_store: CodeStore, images: ImageBuilder) -> None:
        self._database = database
        self._code = code_store
        self._holds = code_store.holds
        self._tasks = images.tasks_dir
        self._opt = images.opt_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambdad-reclaim")
        self._lock = threading.Lock()
        self._queued = False
        self._closed = False
        self._holds.on_free = self.request

    def start(self) -> int:
        """At start-up, before any environment: remove what interrupted unpacks, merges and reclaims
        left behind, then everything unused; returns how many keys were reclaimed."""
        if incomplete := self._code.remove_incomplete():
            log.info("removed %d code package(s) whose writing was interrupted", incomplete)
        for directory in (self._tasks, self._opt):
            for entry in _entries(directory):
                if entry.name.startswith("."):
                    _remove(Path(entry.path))
        return self.reclaim()

    def request(self) -> None:
        """Run a pass soon (merged with one already queued)."""
        with self._lock:
            if self._queued or self._closed:
                return
            self._queued = True
        self._executor.submit(self._run)

    def close(self) -> None:
        """Finish the queued pass and stop."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)

    def reclaim(self) -> int:
        """One pass; returns how many zips, unpacked trees and merged layers (by key) it removed."""
        on_disk = self._on_disk()
        self._holds.condemn(on_disk)
        with self._database.read() as connection:
            in_use = function_records.code_in_use(connection)
        named = set(in_use.packages) | {OPT_KEY_PREFIX + merged_name(layers) for layers in in_use.layer_sets}
        set_aside: list[Path] = []
        # What is unused but held (an environment of an old version still runs) goes once it lets go.
        removed, again = self._holds.execute(
            on_disk, named, lambda key: set_aside.extend(self._set_aside(key))
        )
        if again:
            self.request()
        for path in set_aside:
            _remove(path)
        # A cluster's shared copies: only those no record names and nobody stored lately (a create on
        # another node stores before its record commits).
        self._code.mirror.collect(set(in_use.packages))
        if removed:
            log.info("reclaimed %d unused code package(s) and unpacked tree(s)", len(removed))
        return len(removed)

    def _run(self) -> None:
        with self._lock:
            self._queued = False
        try:
            self.reclaim()
        except Exception:
            log.exception("reclaiming unused code failed")

    def _on_disk(self) -> set[str]:
        keys = self._code.digests()
        keys.update(entry.name for entry in _entries(self._tasks) if not entry.name.startswith("."))
        keys.update(
            OPT_KEY_PREFIX + entry.name for entry in _entries(self._opt) if not entry.name.startswith(".")
        )
        return keys

    def _set_aside(self, key: str) -> list[Path]:
        """Under the holds' lock, so quick: unlink the zip, rename the trees out of every cold start's way."""
        if key.startswith(OPT_KEY_PREFIX):
            trees = [self._opt / key.removeprefix(OPT_KEY_PREFIX)]
        else:
            trees = [self._tasks / key]
            self._code.remove(key)
        moved = []
        for tree in trees:
            aside = tree.with_name(f"{_ASIDE}{tree.name}-{secrets.token_hex(4)}")
            try:
                os.rename(tree, aside)
            except FileNotFoundError:
                continue
            moved.append(aside)
        return moved


def holding(make: EnvironmentMaker, images: ImageBuilder) -> EnvironmentMaker:
    """``make``, with every environment holding its image's code from its making (see ``releasing``)."""

    def make_holding(image: FunctionImage) -> ExecutionEnvironment:
        images.hold(image)
        try:
            return make(image)
        except BaseException:
            images.release(image)
            raise

    return make_holding


def releasing(images: ImageBuilder) -> PoolListener:
    """A pool listener giving back an environment's hold once it stopped."""

    def stopped(event: str, environment: ExecutionEnvironment) -> None:
        if event == "stopped":
            images.release(environment.image)

    return stopped


def _entries(directory: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            yield from entries
    except (FileNotFoundError, NotADirectoryError):
        return


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        log.exception("removing unused code at %s failed", path)
