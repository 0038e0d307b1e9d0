"""Change notices for the whole cluster: a change committed on one node reaches every node's listeners.

Each notice is published on the core NATS subject ``<cluster>.changes`` after the local listeners heard
it. Core NATS does not keep messages for a node that was cut off, so a node that gets its connection back
forgets everything it cached (``EVERYTHING``): the next lookups read PostgreSQL again.
"""

from __future__ import annotations

import asyncio
import json
import logging

from nats.aio.msg import Msg

from lambdad.cluster.connection import ClusterConnection
from lambdad.models import Scope
from lambdad.services.changes import ANYWHERE, CODE_OR_CONFIGURATION, EVERYTHING, FunctionChanges

log = logging.getLogger(__name__)


class ClusterChanges(FunctionChanges):
    """``FunctionChanges`` whose notices also reach the other nodes."""

    def __init__(self, connection: ClusterConnection) -> None:
        super().__init__()
        self._connection = connection
        self._subject = connection.subject("changes")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publishing: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        """Hear the other nodes' notices (on the event loop the NATS client runs on)."""
        self._loop = asyncio.get_running_loop()
        await self._connection.client.subscribe(self._subject, cb=self._heard)
        self._connection.on_connection(self._connection_changed)

    def notify(self, scope: Scope, name: str, what: str = CODE_OR_CONFIGURATION) -> None:
        self.deliver(scope, name, what)
        message = json.dumps(
            {
                "node": self._connection.node_id,
                "account": scope.account,
                "region": scope.region,
                "name": name,
                "what": what,
            }
        )
        if self._loop is None:
            return  # before start: nothing else runs yet
        # Writers commit in worker threads; the NATS client belongs to the event loop.
        self._loop.call_soon_threadsafe(self._publish, message.encode())

    def _publish(self, data: bytes) -> None:
        async def publish() -> None:
            try:
                await self._connection.client.publish(self._subject, data)
            except Exception as error:  # the others forget everything when they get NATS back
                log.warning("a change notice could not be published: %s", error)

        task = asyncio.ensure_future(publish())
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _heard(self, message: Msg) -> None:
        try:
            notice = json.loads(message.data)
            if notice["node"] == self._connection.node_id:
                return
            scope = Scope(notice["account"], notice["region"])
            name, what = notice["name"], notice["what"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed change notice")
            return
        # Listeners may block briefly (locks); they are the same ones a local commit calls.
        self.deliver(scope, name, what)

    async def _connection_changed(self, up: bool) -> None:
        if up:
            self.deliver(ANYWHERE, "", EVERYTHING)
