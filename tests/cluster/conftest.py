"""A migrated PostgreSQL database of the test's own, dropped afterwards (cluster parts need PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambdad.store import Database
from tests.store.conftest import fresh_postgres


@pytest.fixture
def postgres() -> Iterator[Database]:
    with fresh_postgres() as database:
        yield database
