"""Moving functions from Pending/InProgress to Active/Successful in the background, as AWS does.

A create or update answers at once with ``State: Pending`` or ``LastUpdateStatus: InProgress``; the
activator then prepares the function (a hook the execution layer fills in: unpacking code, warming
runtimes) and settles it. Unsettled functions found at start-up (a crash mid-way) are settled again.

A function that cannot be prepared becomes Failed with a reason its owner can read: the preparer's
``PreparationError`` text, else a generic one. Exception texts carry host paths (the data directory,
interpreters, the runtime client's install), which a client has no business seeing: the server log
keeps them, with the function's name.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from lambdad.models import LATEST, FunctionState, FunctionVersion, Scope, UpdateStatus
from lambdad.services.changes import FunctionChanges
from lambdad.store import Database
from lambdad.store import functions as function_records
from lambdad.store.outage import Outage, unavailable

log = logging.getLogger(__name__)

Preparer = Callable[[FunctionVersion], None]

PREPARATION_FAILED = "The function could not be prepared to run on this server; its operator has the details."


class PreparationError(Exception):
    """A preparation failure whose text (no host paths) may become the function's StateReason."""


def settled(version: FunctionVersion, failure: str | None = None) -> FunctionVersion:
    """``version`` after its pending work finished (or failed with ``failure``)."""
    changes: dict[str, object] = {"revision_id": str(uuid.uuid4())}
    if version.state is FunctionState.PENDING:
        if failure:
            changes.update(
                state=FunctionState.FAILED, state_reason=failure, state_reason_code="InternalError"
            )
        else:
            changes.update(state=FunctionState.ACTIVE, state_reason=None, state_reason_code=None)
        changes["last_update_status"] = UpdateStatus.FAILED if failure else UpdateStatus.SUCCESSFUL
    elif version.last_update_status is UpdateStatus.IN_PROGRESS:
        changes.update(
            last_update_status=UpdateStatus.FAILED if failure else UpdateStatus.SUCCESSFUL,
            last_update_status_reason=failure,
            last_update_status_reason_code="InternalError" if failure else None,
        )
    return version.evolve(**changes)


class Activator:
    """Settles functions on a few background threads, so that one slow preparation (a first Node.js
    runtime install takes minutes) does not hold up the others; a settle only applies to the revision it
    prepared, so concurrent settles of one function cannot undo each other."""

    def __init__(self, database: Database, changes: FunctionChanges, prepare: Preparer | None = None) -> None:
        self._database = database
        self._changes = changes
        self._prepare = prepare or (lambda version: None)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambdad-activate")
        self._closed = threading.Event()

    def submit(self, scope: Scope, name: str, version: str = LATEST) -> Future[None]:
        """Settle a function's version (``$LATEST`` unless told) soon."""
        return self._executor.submit(self._settle, scope, name, version)

    def recover(self) -> int:
        """Settle every function a previous run (or a node that died) left unsettled; returns how many
        there were. Waits out a database outage: a death noticed meanwhile must not leave them Pending."""
        outage = Outage(log, "finding unsettled functions")
        while True:
            try:
                with self._database.read() as connection:
                    pending = function_records.pending_versions(connection)
                outage.succeeded()
                break
            except Exception as error:
                delay = outage.failed(error)
                if delay is None or self._closed.is_set():
                    raise
                self._closed.wait(delay)
        for scope, version in pending:
            self.submit(scope, version.name, version.version)
        return len(pending)

    def close(self) -> None:
        """Finish queued work and stop (a settle waiting for the database gives up: the next start
        settles it)."""
        self._closed.set()
        self._executor.shutdown(wait=True)

    def _settle(self, scope: Scope, name: str, qualifier: str) -> None:
        # A function left Pending by a database outage would stay so until the next start: wait it out.
        outage = Outage(log, f"settling function {name}")
        while not self._closed.is_set():
            try:
                self._settle_once(scope, name, qualifier)
                outage.succeeded()
                return
            except Exception as error:
                delay = outage.failed(error)
                if delay is None:
                    log.exception("settling function %s in %s failed", name, scope)
                    return
                self._closed.wait(delay)

    def _settle_once(self, scope: Scope, name: str, qualifier: str) -> None:
        with self._database.read() as connection:
            version = function_records.get_version(connection, scope, name, qualifier)
        if version is None or version.is_settled:
            return
        failure = None
        try:
            self._prepare(version)
        except Exception as error:  # a function that cannot be prepared is Failed, as on AWS
            if unavailable(error):  # not the function's fault (code is fetched from the database)
                raise
            log.exception("preparing function %s (%s) failed", name, qualifier)
            failure = str(error) if isinstance(error, PreparationError) else PREPARATION_FAILED
        with self._database.write() as connection:
            current = function_records.get_version(connection, scope, name, qualifier, for_update=True)
            # Only settle what was prepared: a newer update queued its own settle.
            if current is None or current.revision_id != version.revision_id:
                return
            done = settled(current, failure).evolve(last_modified=current.last_modified)
            if qualifier != LATEST:  # a published version keeps its RevisionId as it turns Active
                done = done.evolve(revision_id=current.revision_id)
            function_records.save_version(connection, scope, done)
        self._changes.notify(scope, name)
