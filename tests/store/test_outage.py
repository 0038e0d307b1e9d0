"""Telling a database outage from a refused statement, and logging an outage once."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lambdad.store import Database
from lambdad.store.outage import Outage, reason, unavailable
from tests.support import free_port


def _failure(url: str, statement: str = "SELECT 1") -> SQLAlchemyError:
    database = Database(url)
    try:
        with database.read() as connection:
            connection.execute(text(statement))
    except SQLAlchemyError as error:
        return error
    finally:
        database.dispose()
    raise AssertionError("the statement worked")


def test_a_postgresql_nobody_listens_on_is_unavailable_and_answers_at_once() -> None:
    error = _failure(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    assert unavailable(error)
    assert "connection" in reason(error) and "\n" not in reason(error)
    wrapped = RuntimeError("a write failed")
    wrapped.__cause__ = error
    assert unavailable(wrapped)  # through a chain of causes (the group committer re-raises)


def test_a_refused_statement_is_not_an_outage() -> None:
    integrity = IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not unavailable(integrity)
    assert not unavailable(ValueError("a bug"))


def test_an_outage_is_logged_once_with_growing_delays_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = _failure(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    outage = Outage(logging.getLogger("test"), "the loop")
    with caplog.at_level(logging.WARNING):
        delays = [outage.failed(error) for _ in range(8)]
        outage.succeeded()
        outage.succeeded()
    assert all(delay is not None for delay in delays)
    assert delays == sorted(delays) and delays[-1] == delays[-2]  # doubling up to a ceiling
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["the loop", "the loop"]
    assert "unavailable" in caplog.records[0].getMessage() and "back" in caplog.records[1].getMessage()
    assert outage.failed(ValueError("a bug")) is None and not outage.ongoing
