"""Runs one poller per enabled mapping and moves each mapping's state on once its poller did what was
asked (started, stopped, restarted with new settings, or stopped for good and removed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lambdad.errors import InvalidParameterValueException
from lambdad.events.filtering import FilterSet
from lambdad.events.mappings.poller import Poller
from lambdad.events.ownership import LocalOwnership, WorkKind, WorkOwnership
from lambdad.events.sources import SOURCE_KINDS, SourceSpec, arn_service, kind_for
from lambdad.invocation import Invoker
from lambdad.policy.roles import function_source
from lambdad.services.event_source_mappings import EventSourceMappingService
from lambdad.services.mapping_states import TRANSITIONAL, MappingState, settled
from lambdad.store.event_source_mappings import MappingRecord
from lambdad.store.outage import Outage

log = logging.getLogger(__name__)

# How long a (re)started poller may take to make its first connection attempt before the mapping is
# reported Enabled anyway (a broker that is down keeps the mapping Enabled; the poller keeps trying).
OPEN_WAIT = 5.0
# How long a deleted mapping waits for its source kind to drop the broker's state for it.
REMOVE_WAIT = 10.0


class MappingCatalog:
    """The ``SourceCatalog`` the control plane asks: which sources exist and whether a mapping suits its
    source (the kind's own checks, the filter patterns, the on-failure destination)."""

    def __init__(self, endpoints: dict[str, str], account: str) -> None:
        self._endpoints = endpoints
        self._account = account

    def services(self) -> list[str]:
        return sorted(SOURCE_KINDS)

    def ordered(self, event_source_arn: str) -> bool:
        kind = kind_for(event_source_arn)
        return bool(getattr(kind, "ordered", False))

    def check(self, record: MappingRecord) -> None:
        FilterSet.from_criteria(record.config.get("FilterCriteria"))
        destination = ((record.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        if destination and kind_for(destination) is None:
            raise InvalidParameterValueException(
                f"The provided destination {destination} is not supported: lambdad sends failure records to "
                f"{', '.join(f'arn:aws:{name}:...' for name in self.services())}."
            )
        kind = kind_for(record.event_source_arn)
        if kind is not None:
            kind.validate(spec_for(record, self._endpoints, record.account))


def spec_for(
    record: MappingRecord, endpoints: dict[str, str], account: str, role: str | None = None
) -> SourceSpec:
    """What a source needs of a mapping (``role``: the mapped function's execution role, if read)."""
    config = record.config
    return SourceSpec(
        uuid=record.uuid,
        event_source_arn=record.event_source_arn,
        endpoint=endpoints.get(arn_service(record.event_source_arn), ""),
        region=record.region,
        account=account,
        batch_size=int(config.get("BatchSize") or 10),
        starting_position=config.get("StartingPosition"),
        starting_position_timestamp=config.get("StartingPositionTimestamp"),
        queues=tuple(config.get("Queues") or ()),
        topics=tuple(config.get("Topics") or ()),
        maximum_batching_window_in_seconds=int(config.get("MaximumBatchingWindowInSeconds") or 0),
        source_access_configurations=tuple(
            (str(access.get("Type", "")), str(access.get("URI", "")))
            for access in config.get("SourceAccessConfigurations") or ()
        ),
        role=role,
    )


class MappingSupervisor:
    """The pollers of this server, kept in step with the stored mappings."""

    def __init__(
        self,
        service: EventSourceMappingService,
        invoker: Invoker,
        endpoints: dict[str, str],
        account: str,
        ownership: WorkOwnership | None = None,
    ) -> None:
        self._service = service
        self._invoker = invoker
        self._endpoints = endpoints
        self._account = account
        self._pollers: dict[str, tuple[Poller, asyncio.Task[None]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[None]] = set()
        # In a cluster a mapping's poller runs on the node that owns the mapping only.
        self._ownership = ownership or LocalOwnership()
        self._resync: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start every enabled mapping (after a restart too) and follow changes from now on."""
        self._loop = asyncio.get_running_loop()
        self._service.subscribe(self._changed)
        records = await asyncio.to_thread(self._service.all_mappings)
        self._ownership.track(WorkKind.EVENT_SOURCE_MAPPING, [record.uuid for record in records])
        for record in records:
            self._schedule(record.uuid)
        self._ownership.subscribe(self._ownership_changed)
        if self._ownership.resync_every is not None:
            self._resync = asyncio.create_task(self._resync_every(self._ownership.resync_every))

    async def _ownership_changed(self) -> None:
        """Stop the pollers of mappings this node no longer owns (before it lets them go; without reading
        the store, which may be what this node lost), then start those it now owns."""
        lost = [
            uuid for uuid in self._pollers if not self._ownership.owns(WorkKind.EVENT_SOURCE_MAPPING, uuid)
        ]
        for uuid in lost:
            async with self._locks.setdefault(uuid, asyncio.Lock()):
                if not self._ownership.owns(WorkKind.EVENT_SOURCE_MAPPING, uuid):
                    await self._stop_poller(uuid)
        await self._catch_up()

    async def _resync_every(self, seconds: float) -> None:
        """Other nodes' API calls change mappings without telling this node: read them again now and then."""
        outage = Outage(log, "event source mappings (reading them again)")
        while True:
            await asyncio.sleep(seconds)
            try:
                await self._catch_up()
            except Exception as error:
                if outage.failed(error) is None:
                    log.exception("event source mappings could not be read again; trying later")
            else:
                outage.succeeded()

    async def _catch_up(self) -> None:
        """Reconcile every mapping whose poller here is not what its record and this node's ownership ask."""
        records = await asyncio.to_thread(self._service.all_mappings)
        self._ownership.track(WorkKind.EVENT_SOURCE_MAPPING, [record.uuid for record in records])
        known = {record.uuid for record in records}
        stale = [
            record.uuid
            for record in records
            if self._out_of_step(record, self._ownership.owns(WorkKind.EVENT_SOURCE_MAPPING, record.uuid))
        ]
        stale += [uuid for uuid in self._pollers if uuid not in known]
        await asyncio.gather(*(self._reconcile(uuid) for uuid in stale))

    def _out_of_step(self, record: MappingRecord, owned: bool) -> bool:
        running = self._pollers.get(record.uuid)
        if not owned:
            return running is not None
        if record.state in TRANSITIONAL:  # Deleting too
            return True
        if record.enabled:
            return running is None or not _same_settings(running[0].mapping, record)
        return running is not None

    async def stop(self) -> None:
        """Stop every poller; unacknowledged messages go back to their brokers. States stay as they are,
        so the next start resumes them."""
        if self._resync is not None:
            self._resync.cancel()
            await asyncio.gather(self._resync, return_exceptions=True)
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        for uuid in list(self._pollers):
            await self._stop_poller(uuid)

    def pollers(self) -> dict[str, Poller]:
        """The running pollers by mapping UUID."""
        return {uuid: poller for uuid, (poller, _) in self._pollers.items()}

    async def overview(self) -> list[dict[str, Any]]:
        """Every mapping with its state, last processing result, last error and lag (lambdad's view)."""
        rows = []
        for record in await asyncio.to_thread(self._service.all_mappings):
            poller = self._pollers.get(record.uuid, (None, None))[0]
            lag = None
            if poller is not None and poller.status.connected:
                with contextlib.suppress(Exception):
                    lag = await asyncio.wait_for(poller.source.lag(), 2)
            status = poller.status if poller is not None else None
            rows.append(
                {
                    "UUID": record.uuid,
                    "EventSourceArn": record.event_source_arn,
                    "FunctionArn": record.function_arn,
                    "State": record.state,
                    "LastProcessingResult": status.last_result if status else record.last_processing_result,
                    "LastError": status.last_error if status else None,
                    "Connected": status.connected if status else False,
                    "Lag": lag,
                    "Invocations": status.invocations if status else 0,
                    "Delivered": status.delivered if status else 0,
                    "Filtered": status.filtered if status else 0,
                    "GivenUp": status.failed_to_destination if status else 0,
                }
            )
        return rows

    # --- reconciling -------------------------------------------------------------------------------

    def _changed(self, uuid: str) -> None:
        """Called by the service (from a worker thread) after a mapping changed."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule, uuid)

    def _schedule(self, uuid: str) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile(uuid))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _reconcile(self, uuid: str) -> None:
        # A change heard while the database is away is reconciled once it is back.
        outage = Outage(log, f"event source mapping {uuid}")
        while True:
            try:
                await self._reconcile_once(uuid)
                outage.succeeded()
                return
            except Exception as error:
                delay = outage.failed(error)
                if delay is None:
                    log.exception("event source mapping %s could not be reconciled", uuid)
                    return
                await asyncio.sleep(delay)

    async def _reconcile_once(self, uuid: str) -> None:
        lock = self._locks.setdefault(uuid, asyncio.Lock())
        async with lock:
            record = await asyncio.to_thread(self._service.find, uuid)
            if record is None or not self._ownership.owns(WorkKind.EVENT_SOURCE_MAPPING, uuid):
                await self._stop_poller(uuid)  # gone, or another node's to run (and to settle)
                return
            if record.state == MappingState.DELETING:
                await self._stop_poller(uuid)
                await self._remove_at_source(record)
                await asyncio.to_thread(self._service.remove, uuid)
                log.info("event source mapping %s deleted", uuid)
                return
            running = self._pollers.get(uuid)
            if record.enabled:
                if running is None or not _same_settings(running[0].mapping, record):
                    await self._stop_poller(uuid)
                    await self._start_poller(record)
            else:
                await self._stop_poller(uuid)
            if record.state in TRANSITIONAL:
                await asyncio.to_thread(self._service.settle, uuid, settled(record.enabled), record)

    async def _remove_at_source(self, record: MappingRecord) -> None:
        """Let the source kind drop what its broker keeps for a deleted mapping (a durable consumer, a
        capture trigger, an MQTT session), where the kind has such a thing (an optional ``remove``).
        Best effort: the mapping goes even when the broker cannot be reached."""
        remove = getattr(kind_for(record.event_source_arn), "remove", None)
        if remove is None:
            return
        try:
            await asyncio.wait_for(remove(spec_for(record, self._endpoints, record.account)), REMOVE_WAIT)
        except Exception as error:  # the broker's problem must not keep a deleted mapping alive
            log.warning("event source mapping %s: its source kept its state: %s", record.uuid, error)

    async def _start_poller(self, record: MappingRecord) -> None:
        kind = kind_for(record.event_source_arn)
        if kind is None:
            log.error(
                "event source mapping %s: no event source serves %s", record.uuid, record.event_source_arn
            )
            return
        # Read when the poller starts: a role changed later shows after the next restart of the poller.
        role = await asyncio.to_thread(self._service.function_role, record)
        source = kind.source(spec_for(record, self._endpoints, record.account, role))

        async def report(result: str) -> None:
            await asyncio.to_thread(self._service.report, record.uuid, result)

        roles = self._service.roles
        role_check = None
        if roles is not None and role is not None:
            # The function's execution role, as Lambda assumes it, decides what the poller may do.
            session = record.function_arn.split(":")[6]

            def role_check(action: str, resource: str) -> str | None:
                assert roles is not None and role is not None
                return roles.denial(
                    role,
                    action,
                    resource,
                    service="lambda.amazonaws.com",
                    session=session,
                    context=function_source(record.function_arn),
                )

        poller = Poller(
            record,
            source,
            self._invoker,
            record.account,  # the mapping acts in its own account
            self._endpoints,
            report,
            batch_info_key=str(getattr(source, "batch_info_key", "BatchInfo")),
            role_check=role_check,
        )
        task = asyncio.create_task(poller.run(), name=f"mapping-{record.uuid}")
        task.add_done_callback(lambda done: _log_end(record.uuid, done))
        self._pollers[record.uuid] = (poller, task)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poller.opened.wait(), OPEN_WAIT)
        log.info("event source mapping %s polling %s", record.uuid, record.event_source_arn)

    async def _stop_poller(self, uuid: str) -> None:
        running = self._pollers.pop(uuid, None)
        if running is None:
            return
        _, task = running
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log.info("event source mapping %s stopped", uuid)


def _same_settings(old: MappingRecord, new: MappingRecord) -> bool:
    """Whether a running poller already polls as ``new`` asks (else it is restarted)."""
    return (old.function_arn, old.event_source_arn, old.config) == (
        new.function_arn,
        new.event_source_arn,
        new.config,
    )


def _log_end(uuid: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("event source mapping %s: poller ended", uuid, exc_info=task.exception())
