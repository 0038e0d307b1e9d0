"""Publishing, aliases and the lookup's weighted choice, on a real SQLite store."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.errors import ResourceConflictException
from lambdad.models import FunctionState, UpdateStatus
from lambdad.services.aliases import AliasService
from lambdad.services.changes import ALIASES, DELETED, VERSIONS
from lambdad.services.concurrency import ConcurrencyService
from lambdad.services.lookup import FunctionLookup
from tests.services.test_functions import SCOPE, Parts, create_params
from tests.support import make_zip


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    built = Parts(tmp_path)
    yield built
    built.close()


def active(parts: Parts, name: str, **params: object) -> None:
    parts.service.create(SCOPE, create_params(name, **params))
    parts.activator.submit(SCOPE, name).result(timeout=5)


def test_publish_snapshots_latest_and_answers_the_same_version_until_it_changes(parts: Parts) -> None:
    active(parts, "f")
    heard: list[str] = []
    parts.changes.subscribe(lambda region, name, what: heard.append(what))
    first = parts.service.versions.publish(SCOPE, "f", description="first")
    assert (first.version, first.description, first.state) == ("1", "first", FunctionState.ACTIVE)
    assert parts.service.versions.publish(SCOPE, "f") == first
    parts.service.update_configuration(SCOPE, {"FunctionName": "f", "Timeout": 9})
    parts.activator.submit(SCOPE, "f").result(timeout=5)
    second = parts.service.versions.publish(SCOPE, "f")
    assert (second.version, second.timeout) == ("2", 9)
    assert parts.service.get(SCOPE, "f", "1").timeout == 3
    assert heard.count(VERSIONS) == 2


def test_publish_with_an_update_starts_pending_and_the_activator_settles_it_keeping_its_revision(
    parts: Parts,
) -> None:
    active(parts, "g")
    published = parts.service.update_code(
        SCOPE, {"FunctionName": "g", "ZipFile": make_zip({"handler.py": "x = 1\n"}), "Publish": True}
    )
    assert (published.version, published.state) == ("1", FunctionState.PENDING)
    parts.activator.submit(SCOPE, "g", "1").result(timeout=5)
    settled = parts.service.get(SCOPE, "g", "1")
    assert (settled.state, settled.last_update_status) == (FunctionState.ACTIVE, UpdateStatus.SUCCESSFUL)
    assert settled.revision_id == published.revision_id


def test_a_version_an_alias_reaches_cannot_be_deleted(parts: Parts) -> None:
    active(parts, "h")
    parts.service.versions.publish(SCOPE, "h")
    aliases = AliasService(parts.database, parts.changes)
    aliases.create(SCOPE, "h", "live", "$LATEST", routing=None)
    aliases.update(SCOPE, "h", "live", function_version="1")
    heard: list[str] = []
    parts.changes.subscribe(lambda region, name, what: heard.append(what))
    with pytest.raises(ResourceConflictException, match=r"\[live\]"):
        parts.service.delete(SCOPE, "h", "1")
    aliases.delete(SCOPE, "h", "live")
    parts.service.delete(SCOPE, "h", "1")
    assert heard == [ALIASES, DELETED]


def test_lookup_picks_the_additional_version_by_weight_per_invocation(parts: Parts) -> None:
    active(parts, "w")
    parts.service.versions.publish(SCOPE, "w")
    parts.service.update_configuration(SCOPE, {"FunctionName": "w", "Timeout": 7})
    parts.activator.submit(SCOPE, "w").result(timeout=5)
    parts.service.versions.publish(SCOPE, "w")
    aliases = AliasService(parts.database, parts.changes)
    aliases.create(SCOPE, "w", "canary", "1", routing={"AdditionalVersionWeights": {"2": 0.25}})
    lookup = FunctionLookup(parts.database, parts.changes, random.Random(7))
    first = lookup.load(SCOPE, "w", "canary")
    assert first.qualifier == "canary"
    picks = Counter((lookup.cached(SCOPE, "w:canary", None) or first).version.version for _ in range(4000))
    assert 900 <= picks["2"] <= 1100, picks
    # Repointing the alias is seen at once: the cache listens for changes.
    aliases.update(SCOPE, "w", "canary", routing={"AdditionalVersionWeights": {}})
    assert lookup.cached(SCOPE, "w", "canary") is None
    assert {lookup.load(SCOPE, "w", "canary").version.version for _ in range(50)} == {"1"}


def test_a_change_to_one_function_keeps_the_others_cached_but_a_reservation_drops_the_region(
    parts: Parts,
) -> None:
    active(parts, "a")
    active(parts, "b")
    lookup = FunctionLookup(parts.database, parts.changes)
    lookup.load(SCOPE, "a", None)
    lookup.load(SCOPE, "b", None)
    parts.service.update_configuration(SCOPE, {"FunctionName": "a", "Timeout": 9})
    assert lookup.cached(SCOPE, "a", None) is None
    assert lookup.cached(SCOPE, "b", None) is not None  # runs on without a database read
    lookup.load(SCOPE, "a", None)
    # A reservation changes the region's total, which every entry carries.
    ConcurrencyService(parts.database, parts.changes, 1000).put(SCOPE, "a", 10)
    assert lookup.cached(SCOPE, "a", None) is None and lookup.cached(SCOPE, "b", None) is None
    assert lookup.load(SCOPE, "b", None).total_reserved == 10
