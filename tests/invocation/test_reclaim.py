"""The reclaimer against its races, step by step: a hold taken while a pass reads the records (a cold
start, a create storing the same package) keeps the code; a hold taken after a pass removed it is
refused, never handed a missing directory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

from lambdad.environment import FunctionImage
from lambdad.errors import ResourceConflictException
from lambdad.invocation import ImageBuilder
from lambdad.invocation.reclaim import CodeReclaimer
from lambdad.models import CodePackage
from lambdad.runtimes import Interpreter
from lambdad.services.code import storing
from lambdad.store import CodeStore, Database
from tests.support import make_zip


class ReadHook(Database):
    """A database whose read transactions first run ``during_read`` (once): what another thread does
    while a reclaim pass, between condemning and removing, reads which code the records name."""

    during_read: Callable[[], None] | None = None

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        hook, self.during_read = self.during_read, None
        if hook is not None:
            hook()
        with super().read() as connection:
            yield connection


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[ReadHook, CodeStore, ImageBuilder, CodeReclaimer]]:
    database = ReadHook(f"sqlite:///{tmp_path / 'lambdad.db'}")
    database.migrate()
    store = CodeStore(tmp_path / "code")
    images = ImageBuilder(store, tmp_path / "tasks", tmp_path / "runtimes")
    reclaimer = CodeReclaimer(database, store, images)
    yield database, store, images, reclaimer
    reclaimer.close()
    database.dispose()


def image_of(code_dir: Path) -> FunctionImage:
    return FunctionImage(
        function_name="f",
        version="$LATEST",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        region="us-east-1",
        runtime="python3.12",
        handler="handler.handler",
        memory_mb=128,
        timeout_s=3,
        ephemeral_mb=512,
        code_dir=code_dir,
        runtime_dir=None,
        interpreter=Interpreter("python3.12", Path("/usr/bin/python3"), "3.12.0"),
    )


def test_unreferenced_code_is_removed(parts: tuple[ReadHook, CodeStore, ImageBuilder, CodeReclaimer]) -> None:
    _database, store, images, reclaimer = parts
    digest = store.put(make_zip())
    code_dir = images.unpack(digest)
    assert reclaimer.reclaim() == 1
    assert not code_dir.exists() and not store.path(digest).exists()
    assert not [entry.name for entry in images.tasks_dir.iterdir()]  # nothing set aside is left


def test_a_cold_start_holding_during_the_pass_keeps_the_code(
    parts: tuple[ReadHook, CodeStore, ImageBuilder, CodeReclaimer],
) -> None:
    database, store, images, reclaimer = parts
    digest = store.put(make_zip())
    image = image_of(images.unpack(digest))
    database.during_read = lambda: images.hold(image)  # condemned, then held before the removal
    assert reclaimer.reclaim() == 0
    assert image.code_dir.is_dir() and store.path(digest).exists()
    images.release(image)  # the environment stopped: its code goes now (the release asks for a pass)
    reclaimer.close()
    assert not image.code_dir.exists() and not store.path(digest).exists()


def test_a_create_storing_the_same_package_during_the_pass_keeps_it(
    parts: tuple[ReadHook, CodeStore, ImageBuilder, CodeReclaimer],
) -> None:
    database, store, images, reclaimer = parts
    zip_bytes = make_zip()
    digest = store.put(zip_bytes)
    images.unpack(digest)
    stored = contextlib.ExitStack()
    package = CodePackage(digest, len(zip_bytes), 0)
    # Storing again (a no-op on disk: the package is there) while the pass reads the records; the
    # record would commit while held.
    database.during_read = lambda: stored.enter_context(storing(store, zip_bytes, package))
    assert reclaimer.reclaim() == 0
    assert store.path(digest).exists() and (images.tasks_dir / digest).is_dir()
    stored.close()


def test_a_hold_after_the_code_was_reclaimed_is_refused(
    parts: tuple[ReadHook, CodeStore, ImageBuilder, CodeReclaimer],
) -> None:
    _database, store, images, reclaimer = parts
    image = image_of(images.unpack(store.put(make_zip())))
    reclaimer.reclaim()
    with pytest.raises(ResourceConflictException, match="updated or deleted while it was being invoked"):
        images.hold(image)
    assert not store.holds.held(image.code_dir.name)
