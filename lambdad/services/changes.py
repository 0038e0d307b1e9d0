"""Who hears that a function changed: caches and the environment pool subscribe; writers notify."""

from __future__ import annotations

import logging
from collections.abc import Callable

from lambdad.models import Scope

log = logging.getLogger(__name__)

ChangeListener = Callable[[Scope, str, str], None]  # (account and region, function name, what changed)

CODE_OR_CONFIGURATION = "function"  # $LATEST's code or configuration (or its tags)
CONCURRENCY = "concurrency"
VERSIONS = "versions"  # a version was published (existing versions never change)
ALIASES = "aliases"  # an alias was created, repointed or removed
PROVISIONED = "provisioned"  # a provisioned concurrency config was put or deleted
URLS = "urls"  # a function URL config was created, updated or deleted
POLICY = "policy"  # a statement was added to or removed from a resource-based policy
DELETED = "deleted"  # the function, or one of its published versions, is gone
# Anything may have changed (scope ANYWHERE, name ""): a cluster node heard nothing for a while.
EVERYTHING = "everything"
#: The scope an EVERYTHING notice names.
ANYWHERE = Scope("", "")


class FunctionChanges:
    """A list of listeners called after every committed change to a function (from any thread)."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener(scope, name, what)`` after each change (``what``: CODE_OR_CONFIGURATION,
        CONCURRENCY, VERSIONS, ALIASES, PROVISIONED, URLS, POLICY, DELETED, or EVERYTHING)."""
        self._listeners.append(listener)

    def notify(self, scope: Scope, name: str, what: str = CODE_OR_CONFIGURATION) -> None:
        """Tell every listener; one failing listener does not stop the others. (In a cluster, every node's
        listeners: ``lambdad.cluster.changes``.)"""
        self.deliver(scope, name, what)

    def deliver(self, scope: Scope, name: str, what: str) -> None:
        """Tell this process's listeners."""
        for listener in self._listeners:
            try:
                listener(scope, name, what)
            except Exception:
                log.exception("a function-change listener failed for %s", name)
