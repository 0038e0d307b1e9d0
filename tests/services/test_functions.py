"""FunctionService and the activator on a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdad.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import FunctionState, FunctionVersion, Scope, UpdateStatus
from lambdad.services.activation import PREPARATION_FAILED, Activator, PreparationError
from lambdad.services.changes import FunctionChanges
from lambdad.services.functions import FunctionService, resolve
from lambdad.store import CodeStore, Database
from tests.support import ROLE, make_zip

SCOPE = Scope("000000000000", "us-east-1")


class Parts:
    def __init__(self, tmp_path: Path, prepare: Any = None) -> None:
        self.database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
        self.database.migrate()
        self.code = CodeStore(tmp_path / "code")
        self.changes = FunctionChanges()
        self.activator = Activator(self.database, self.changes, prepare)
        self.service = FunctionService(
            self.database, self.code, self.activator, self.changes, code_storage_limit=10**9
        )

    def close(self) -> None:
        self.activator.close()
        self.database.dispose()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    built = Parts(tmp_path)
    yield built
    built.close()


def create_params(name: str, **changes: Any) -> dict[str, Any]:
    return {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip()},
        **changes,
    }


def test_create_is_pending_then_activator_settles_it(parts: Parts) -> None:
    created = parts.service.create(SCOPE, create_params("f"))
    assert created.state is FunctionState.PENDING
    parts.activator.submit(SCOPE, "f").result(timeout=5)
    settled = parts.service.get(SCOPE, "f")
    assert settled.state is FunctionState.ACTIVE
    assert settled.last_update_status is UpdateStatus.SUCCESSFUL
    assert settled.revision_id != created.revision_id
    assert parts.code.digests() == {created.code.sha256_hex}


def test_update_before_activation_conflicts_as_on_aws(tmp_path: Path) -> None:
    released = threading.Event()
    parts = Parts(tmp_path, prepare=lambda version: released.wait(5))
    try:
        parts.service.create(SCOPE, create_params("slow"))
        with pytest.raises(ResourceConflictException, match="Pending"):
            parts.service.update_configuration(SCOPE, {"FunctionName": "slow", "Timeout": 5})
    finally:
        released.set()
        parts.close()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PreparationError("The runtime is unavailable."), "The runtime is unavailable."),
        # Any other exception's text may carry host paths: the reason says only that preparing failed.
        (OSError(2, "No such file or directory", "/var/lib/lambdad/tasks/x"), PREPARATION_FAILED),
    ],
)
def test_failing_preparation_marks_the_function_failed(tmp_path: Path, error: Exception, reason: str) -> None:
    def broken(version: FunctionVersion) -> None:
        raise error

    parts = Parts(tmp_path, prepare=broken)
    try:
        parts.service.create(SCOPE, create_params("broken"))
        parts.activator.submit(SCOPE, "broken").result(timeout=5)
        failed = parts.service.get(SCOPE, "broken")
        assert failed.state is FunctionState.FAILED
        assert failed.state_reason == reason
    finally:
        parts.close()


def test_recover_settles_what_a_crash_left_pending(tmp_path: Path) -> None:
    released = threading.Event()
    first = Parts(tmp_path, prepare=lambda version: released.wait(5))
    first.service.create(SCOPE, create_params("left-pending"))
    # A crash: the process stops before the activator settles anything. Nothing first does after
    # this point may reach the database, so its connections are dropped before preparation ends.
    first.database.dispose()

    second = Parts(tmp_path)
    try:
        assert second.activator.recover() == 1
        second.activator.close()
        assert second.service.get(SCOPE, "left-pending").state is FunctionState.ACTIVE
    finally:
        second.database.dispose()
        released.set()
        first.activator.close()


def test_revision_precondition(parts: Parts) -> None:
    parts.service.create(SCOPE, create_params("rev"))
    parts.activator.submit(SCOPE, "rev").result(timeout=5)
    with pytest.raises(PreconditionFailedException):
        parts.service.update_configuration(SCOPE, {"FunctionName": "rev", "RevisionId": "old"})


def test_resolve_accepts_names_and_arns_and_rejects_other_scopes() -> None:
    assert resolve(SCOPE, "f") == ("f", None)
    assert resolve(SCOPE, "f:prod") == ("f", "prod")
    assert resolve(SCOPE, "000000000000:function:f") == ("f", None)
    assert resolve(SCOPE, "arn:aws:lambda:us-east-1:000000000000:function:f:7") == ("f", "7")
    with pytest.raises(ResourceNotFoundException, match="111111111111"):
        resolve(SCOPE, "arn:aws:lambda:us-east-1:111111111111:function:f")
    with pytest.raises(
        ResourceNotFoundException, match="Functions from 'eu-west-1' are not reachable in this region"
    ):
        resolve(SCOPE, "arn:aws:lambda:eu-west-1:000000000000:function:f")
    with pytest.raises(InvalidParameterValueException):
        resolve(SCOPE, "f:1", "2")


def test_missing_function_names_its_arn(parts: Parts) -> None:
    with pytest.raises(ResourceNotFoundException, match=r"function:ghost:\$LATEST$"):
        parts.service.get(SCOPE, "ghost", "$LATEST")
