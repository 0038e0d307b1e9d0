"""The identity store's answers stand in for it during a database outage, and only then."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from lambdad.api.credential_cache import OutageTolerantResolver
from lambdad.api.sigv4 import KnownKey, SigningIdentity
from lambdad.models import Principal


class Store:
    """A resolver whose keys and availability the test sets."""

    def __init__(self) -> None:
        self.keys: dict[str, KnownKey] = {}
        self.down = False

    def resolve(self, access_key_id: str) -> KnownKey | None:
        if self.down:
            raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))
        return self.keys.get(access_key_id)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def identity(secret: str) -> SigningIdentity:
    return SigningIdentity(secret, Principal.root("000000000000"))


def test_the_store_decides_while_it_answers() -> None:
    store = Store()
    resolver = OutageTolerantResolver(store)
    store.keys["AKIA1"] = identity("s1")
    assert resolver.resolve("AKIA1") == identity("s1")
    store.keys["AKIA1"] = SigningIdentity("s1", Principal.root("000000000000"), active=False)
    found = resolver.resolve("AKIA1")
    assert found is not None and not found.active  # made inactive: at once
    del store.keys["AKIA1"]
    assert resolver.resolve("AKIA1") is None  # deleted: at once


def test_a_recent_answer_stands_in_during_an_outage_and_no_longer() -> None:
    store, clock = Store(), Clock()
    resolver = OutageTolerantResolver(store, keep_s=60, clock=clock)
    store.keys["AKIA1"] = identity("s1")
    resolver.resolve("AKIA1")
    store.down = True
    assert resolver.resolve("AKIA1") == identity("s1")
    with pytest.raises(OperationalError):  # never seen: the outage's error
        resolver.resolve("AKIA2")
    clock.now = 61
    with pytest.raises(OperationalError):  # too old to stand in
        resolver.resolve("AKIA1")


def test_a_deleted_key_is_forgotten_and_other_errors_are_not_hidden() -> None:
    store = Store()
    resolver = OutageTolerantResolver(store, capacity=1)
    store.keys.update({"AKIA1": identity("s1"), "AKIA2": identity("s2")})
    resolver.resolve("AKIA1")
    resolver.resolve("AKIA2")  # AKIA1 pushed out (capacity 1)
    del store.keys["AKIA2"]
    resolver.resolve("AKIA2")  # gone: forgotten
    store.down = True
    for key in ("AKIA1", "AKIA2"):
        with pytest.raises(OperationalError):
            resolver.resolve(key)

    class Broken:
        def resolve(self, access_key_id: str) -> KnownKey | None:
            raise ValueError("a bug")

    with pytest.raises(ValueError):
        OutageTolerantResolver(Broken()).resolve("AKIA1")
