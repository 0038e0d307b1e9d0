"""Event source mappings (Create/Get/Update/Delete/ListEventSourceMappings): validated and stored as AWS
does; the pollers (``lambdad.events.mappings``) read them from here and report their progress back.

What depends on the broker (which ARN services exist, whether a source is a stream, the source's own
checks, filter patterns) is asked of a ``SourceCatalog`` the composition root passes in, so this layer
does not import the event sources above it.
"""

from __future__ import annotations

import builtins
import logging
import threading
import uuid as uuids
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from lambdad.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdad.models import LATEST, Scope, is_version_number, utcnow
from lambdad.policy.roles import RolePermissions, function_source
from lambdad.services.mapping_states import MappingMove, MappingState, next_state
from lambdad.services.markers import decode_marker, encode_marker
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import aliases as alias_records
from lambdad.store import event_source_mappings as records
from lambdad.store import functions as function_records
from lambdad.store import tags as tag_records
from lambdad.store.event_source_mappings import MappingRecord

log = logging.getLogger(__name__)

# What a mapping's poller does with its source, per ARN service, as AWS checks it at create time (the
# permissions AWSLambdaSQSQueueExecutionRole grants; Amazon MQ's DescribeBroker), and what sending a
# failure record to an on-failure destination needs.
SOURCE_ACTIONS = {
    "sqs": ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"),
    "mq": ("DescribeBroker",),
}
DESTINATION_ACTIONS = {"sqs": ("SendMessage",), "sns": ("Publish",)}
_SERVICE_LABELS = {"sqs": "SQS", "sns": "SNS", "mq": "MQ"}

NOT_FOUND = "The resource you requested does not exist."
LIST_PAGE_MAX = 100
# What AWS answers for queues and for streams; lambdad's stream sources take the stream's wording.
USER_INITIATED, USER_ACTION = "USER_INITIATED", "User action"
NO_RECORDS = "No records processed"
# AWS's batch sizes, (default, maximum): per ARN service where AWS sets one (SQS, Amazon MQ), else
# SQS's for queues and Kinesis's for streams.
SERVICE_BATCH = {"sqs": (10, 10000), "mq": (100, 10000)}
QUEUE_BATCH, STREAM_BATCH = (10, 10000), (100, 10000)
# Members UpdateEventSourceMapping may change (besides FunctionName and Enabled).
_UPDATABLE = (
    "BatchSize",
    "FilterCriteria",
    "MaximumBatchingWindowInSeconds",
    "DestinationConfig",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "ParallelizationFactor",
    "FunctionResponseTypes",
    "ScalingConfig",
    "TumblingWindowInSeconds",
    "SourceAccessConfigurations",
)


class SourceCatalog(Protocol):
    """What the event sources tell the control plane (implemented in ``lambdad.events.mappings``)."""

    def services(self) -> list[str]:
        """The ARN services lambdad has a source for."""
        ...

    def ordered(self, event_source_arn: str) -> bool:
        """Whether the ARN's source is a stream (StartingPosition, retries, bisecting)."""
        ...

    def check(self, record: MappingRecord) -> None:
        """The source's own checks and the filter patterns; AWS's errors if refused."""
        ...


@dataclass(frozen=True)
class MappingPage:
    """One page of ListEventSourceMappings."""

    mappings: list[MappingRecord]
    next_marker: str | None


MappingListener = Callable[[str], None]


class EventSourceMappingService:
    """Event source mappings of every account, in every region (each in its own account's)."""

    def __init__(
        self,
        database: Database,
        catalog: SourceCatalog,
        account: str,
        roles: RolePermissions | None = None,
    ) -> None:
        self._database = database
        self._catalog = catalog
        self._account = account
        # What execution roles may do (None: authentication off, roles are not checked); the composition
        # root sets it once the identity store and resource policies are built.
        self.roles: RolePermissions | None = roles
        self._listeners: list[MappingListener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: MappingListener) -> None:
        """Call ``listener(uuid)`` after a mapping was created, changed or asked to go."""
        self._listeners.append(listener)

    def arn(self, record: MappingRecord) -> str:
        """``arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID``."""
        return f"arn:aws:lambda:{record.region}:{record.account}:event-source-mapping:{record.uuid}"

    # --- the API's operations --------------------------------------------------------------------

    def create(self, scope: Scope, params: dict[str, Any]) -> MappingRecord:
        """CreateEventSourceMapping: stored as Creating; the poller enables (or disables) it."""
        source_arn = params.get("EventSourceArn")
        if not source_arn:
            raise InvalidParameterValueException("Unrecognized event source.")
        service = _service(source_arn)
        if service not in self._catalog.services():
            supported = ", ".join(f"arn:aws:{name}:..." for name in sorted(self._catalog.services()))
            raise InvalidParameterValueException(
                f"Unsupported event source ARN {source_arn}: lambdad has event sources for "
                f"{supported or 'no service'}."
            )
        ordered = self._catalog.ordered(source_arn)
        if self.roles is not None:
            with self._database.read() as connection:
                function_arn = _function_arn(connection, scope, params["FunctionName"])
            destination = ((params.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            self._check_role(function_arn, source_arn, destination)
        with self._database.write() as connection:
            function_arn = _function_arn(connection, scope, params["FunctionName"])
            config = _config(params, ordered, service)
            record = MappingRecord(
                uuid=str(uuids.uuid4()),
                account=scope.account,
                region=scope.region,
                function_arn=function_arn,
                event_source_arn=source_arn,
                state=MappingState.CREATING,
                state_transition_reason=USER_ACTION if ordered else USER_INITIATED,
                enabled=params.get("Enabled", True) is not False,
                last_modified=utcnow(),
                last_processing_result=None if service == "sqs" else NO_RECORDS,
                config=config,
            )
            self._catalog.check(record)
            _refuse_duplicate(connection, record)
            records.insert_mapping(connection, record)
            if params.get("Tags"):
                tag_records.put_tags(connection, self.arn(record), dict(params["Tags"]))
        self._announce(record.uuid)
        return record

    def get(self, scope: Scope, uuid: str) -> MappingRecord:
        """GetEventSourceMapping."""
        with self._database.read() as connection:
            return _existing(connection, scope, uuid)

    def update(self, scope: Scope, uuid: str, params: dict[str, Any]) -> MappingRecord:
        """UpdateEventSourceMapping: members left out keep their values; answers Updating (Enabling or
        Disabling when only ``Enabled`` changes)."""
        with self._database.write() as connection:
            current = _existing(connection, scope, uuid)
            if current.state == MappingState.DELETING:
                raise ResourceConflictException(
                    "Cannot update the event source mapping because it is in use."
                )
            ordered = self._catalog.ordered(current.event_source_arn)
            merged = {**current.config, **{k: params[k] for k in _UPDATABLE if k in params}}
            merged["StartingPosition"] = current.config.get("StartingPosition")
            merged["Queues"], merged["Topics"] = current.config.get("Queues"), current.config.get("Topics")
            config = _config(merged, ordered, _service(current.event_source_arn))
            function_arn = current.function_arn
            if params.get("FunctionName"):
                function_arn = _function_arn(connection, scope, params["FunctionName"])
            enabled = current.enabled if params.get("Enabled") is None else bool(params["Enabled"])
            changed = config != current.config or function_arn != current.function_arn
            move = (
                MappingMove.UPDATE
                if changed or enabled == current.enabled
                else (MappingMove.ENABLE if enabled else MappingMove.DISABLE)
            )
            record = current.with_(
                function_arn=function_arn,
                enabled=enabled,
                config=config,
                state=next_state(current.state, move),
                last_modified=utcnow(),
            )
            self._catalog.check(record)
            if self.roles is not None and (
                function_arn != current.function_arn
                or config.get("DestinationConfig") != current.config.get("DestinationConfig")
            ):
                # A new function (its role) or a new destination: AWS checks the role again. The
                # function's role is read on a connection of its own (the store is SQLite's WAL or
                # PostgreSQL: a reader never waits on this writer).
                destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
                    "Destination"
                )
                self._check_role(function_arn, current.event_source_arn, destination)
            records.save_mapping(connection, record)
        self._announce(uuid)
        return record

    def delete(self, scope: Scope, uuid: str) -> MappingRecord:
        """DeleteEventSourceMapping: answers Deleting; the row goes once the poller stopped."""
        with self._database.write() as connection:
            current = _existing(connection, scope, uuid)
            if current.state == MappingState.DELETING:
                return current
            record = current.with_(state=next_state(current.state, MappingMove.DELETE))
            records.set_state(connection, uuid, record.state)
            tag_records.remove_tags(connection, self.arn(record))
        self._announce(uuid)
        return record

    def list(
        self,
        scope: Scope,
        *,
        event_source_arn: str | None = None,
        function_name: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> MappingPage:
        """ListEventSourceMappings, filtered by source and/or function, oldest first."""
        wanted_function = None
        if function_name:
            name, qualifier = resolve(scope, function_name)
            wanted_function = (name, qualifier)
        with self._database.read() as connection:
            found = records.list_mappings(connection, scope)
        if event_source_arn:
            found = [m for m in found if m.event_source_arn == event_source_arn]
        if wanted_function is not None:
            found = [m for m in found if _names(m.function_arn, wanted_function)]
        if marker:
            (after,) = decode_marker(marker, 1)
            uuids_in_order = [m.uuid for m in found]
            found = found[uuids_in_order.index(after) + 1 :] if after in uuids_in_order else []
        limit = max_items or LIST_PAGE_MAX
        if len(found) <= limit:
            return MappingPage(found, None)
        return MappingPage(found[:limit], encode_marker(found[limit - 1].uuid))

    # --- what the pollers call -------------------------------------------------------------------

    def all_mappings(self) -> builtins.list[MappingRecord]:
        """Every mapping in every region (the supervisor's view at start-up)."""
        with self._database.read() as connection:
            return records.list_mappings(connection)

    def find(self, uuid: str) -> MappingRecord | None:
        """One mapping by UUID in any region, or None once it is gone."""
        with self._database.read() as connection:
            return records.get_mapping(connection, uuid)

    def function_role(self, record: MappingRecord) -> str | None:
        """The execution role (``Role``) of the version a mapping invokes (an alias's main version), or
        None when the function or alias is gone: a record's ``invokeIdentityArn``, as on AWS."""
        return self._role_of(record.function_arn)

    def _check_role(self, function_arn: str, source_arn: str, destination: str | None) -> None:
        """AWS's check at CreateEventSourceMapping: the function's execution role must be allowed what
        the poller does with the source (SQS: receive, delete, read the queue's attributes; MQ: describe
        the broker) and what a failure record needs (SQS SendMessage, SNS Publish). Roles the identity
        store does not know, and lambdad's own kinds (NATS, PostgreSQL, Redis, MQTT), are not checked."""
        assert self.roles is not None
        role = self._role_of(function_arn)
        if role is None:
            return
        needed = [(source_arn, action) for action in SOURCE_ACTIONS.get(_service(source_arn), ())]
        if destination:
            needed += [(destination, action) for action in DESTINATION_ACTIONS.get(_service(destination), ())]
        session = function_arn.split(":")[6]
        for resource, action in needed:
            service = _service(resource)
            denial = self.roles.denial(
                role,
                f"{service}:{action}",
                resource,
                service="lambda.amazonaws.com",
                session=session,
                context=function_source(function_arn),
            )
            if denial is not None:
                raise InvalidParameterValueException(role_refusal(action, service))

    def _role_of(self, function_arn: str) -> str | None:
        parts = function_arn.split(":")
        if len(parts) < 7:
            return None
        name, qualifier = parts[6], parts[7] if len(parts) > 7 else LATEST
        owner = Scope(parts[4], parts[3])  # the function's account and region
        with self._database.read() as connection:
            if qualifier != LATEST and not is_version_number(qualifier):
                alias = alias_records.get_alias(connection, owner, name, qualifier)
                if alias is None:
                    return None
                qualifier = alias.function_version
            version = function_records.get_version(connection, owner, name, qualifier)
        return version.role if version is not None and version.role else None

    def settle(self, uuid: str, move: MappingMove, expected: MappingRecord) -> None:
        """The poller did what ``expected`` asked: move the mapping on, unless it changed since."""
        with self._database.write() as connection:
            current = records.get_mapping(connection, uuid)
            if current is None or current.state == MappingState.DELETING:
                return
            if current.last_modified != expected.last_modified or current.state != expected.state:
                return  # changed meanwhile: the poller gets that change next
            records.set_state(connection, uuid, next_state(current.state, move))

    def report(self, uuid: str, last_processing_result: str) -> None:
        """Record a mapping's LastProcessingResult (SQS-style mappings, which AWS answers without one,
        stay without)."""
        with self._database.write() as connection:
            current = records.get_mapping(connection, uuid)
            if current is None or current.last_processing_result in (None, last_processing_result):
                return
            records.set_state(connection, uuid, current.state, last_processing_result=last_processing_result)

    def remove(self, uuid: str) -> None:
        """The poller of a Deleting mapping stopped: the mapping goes."""
        with self._database.write() as connection:
            records.delete_mapping(connection, uuid)

    def _announce(self, uuid: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(uuid)
            except Exception:  # a listener's bug must not fail the API call that already committed
                log.exception("event source mapping listener failed for %s", uuid)


def role_refusal(action: str, service: str) -> str:
    """AWS's words for an execution role that lacks a permission a mapping needs."""
    label = _SERVICE_LABELS.get(service, service.upper())
    return f"The provided execution role does not have permissions to call {action} on {label}"


def _service(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[2] if len(parts) == 6 and parts[0] == "arn" else ""


def _existing(connection: Connection, scope: Scope, uuid: str) -> MappingRecord:
    record = records.get_mapping(connection, uuid)
    if record is None or record.scope != scope:
        raise ResourceNotFoundException(NOT_FOUND)
    return record


def _function_arn(connection: Connection, scope: Scope, function_name: str) -> str:
    """The mapping's ``FunctionArn``: the function (qualified as named); AWS's error if it is missing."""
    try:
        name, qualifier = resolve(scope, function_name)
    except (InvalidParameterValueException, ResourceNotFoundException) as error:
        raise InvalidParameterValueException("Function does not exist") from error
    if qualifier is None:
        exists = function_records.function_exists(connection, scope, name)
    elif qualifier == LATEST or is_version_number(qualifier):
        exists = function_records.get_version(connection, scope, name, qualifier) is not None
    else:
        exists = alias_records.get_alias(connection, scope, name, qualifier) is not None
    if not exists:
        raise InvalidParameterValueException("Function does not exist")
    return scope.function_arn(name, qualifier)


def _names(function_arn: str, wanted: tuple[str, str | None]) -> bool:
    """Whether a mapping's function is the one ListEventSourceMappings's FunctionName names."""
    name, qualifier = wanted
    parts = function_arn.split(":")
    mapped_name, mapped_qualifier = parts[6], parts[7] if len(parts) > 7 else None
    return mapped_name == name and (qualifier is None or qualifier == mapped_qualifier)


def _config(params: dict[str, Any], ordered: bool, service: str) -> dict[str, Any]:
    """The members AWS answers for a mapping, with AWS's defaults, after AWS's checks."""
    default_batch, max_batch = SERVICE_BATCH.get(service, STREAM_BATCH if ordered else QUEUE_BATCH)
    batch_size = params.get("BatchSize") or default_batch
    window = params.get("MaximumBatchingWindowInSeconds")
    window = 0 if window is None else window
    if batch_size > max_batch:
        raise InvalidParameterValueException(
            f"BatchSize {batch_size} is out of range: it must be between 1 and {max_batch}."
        )
    if service == "sqs" and batch_size > 10 and window == 0:
        raise InvalidParameterValueException(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        )
    position = params.get("StartingPosition")
    config: dict[str, Any] = {
        "BatchSize": batch_size,
        "MaximumBatchingWindowInSeconds": window,
        "FunctionResponseTypes": list(params.get("FunctionResponseTypes") or []),
    }
    if ordered:
        if not position:
            raise InvalidParameterValueException(
                "1 validation error detected: Value null at 'startingPosition' failed to satisfy "
                "constraint: Member must not be null."
            )
        if position == "AT_TIMESTAMP" and params.get("StartingPositionTimestamp") is None:
            raise InvalidParameterValueException(
                "StartingPositionTimestamp must be specified when StartingPosition is AT_TIMESTAMP."
            )
        config.update(
            StartingPosition=position,
            BisectBatchOnFunctionError=bool(params.get("BisectBatchOnFunctionError", False)),
            MaximumRetryAttempts=_either(params.get("MaximumRetryAttempts"), -1),
            MaximumRecordAgeInSeconds=_record_age(params.get("MaximumRecordAgeInSeconds")),
            ParallelizationFactor=_either(params.get("ParallelizationFactor"), 1),
            TumblingWindowInSeconds=_either(params.get("TumblingWindowInSeconds"), 0),
            DestinationConfig=_destination(params.get("DestinationConfig")),
        )
        if params.get("StartingPositionTimestamp") is not None:
            config["StartingPositionTimestamp"] = _epoch(params["StartingPositionTimestamp"])
    else:
        if position:
            raise InvalidParameterValueException(
                f"Unsupported starting position for arn type: {params.get('EventSourceArn', '')}"
            )
        if params.get("DestinationConfig") and service == "sqs":
            raise InvalidParameterValueException(
                "Unsupported DestinationConfig parameter for given event source mapping type."
            )
        # Queue brokers without a dead-letter mechanism of their own: lambdad bounds deliveries too.
        if params.get("DestinationConfig"):
            config["DestinationConfig"] = _destination(params["DestinationConfig"])
        if params.get("MaximumRetryAttempts") is not None:
            config["MaximumRetryAttempts"] = params["MaximumRetryAttempts"]
    for member in ("FilterCriteria", "ScalingConfig", "Queues", "Topics", "SourceAccessConfigurations"):
        if params.get(member):
            config[member] = params[member]
    return config


def _either(value: Any, default: Any) -> Any:
    return default if value is None else value


def _record_age(value: int | None) -> int:
    if value is None or value == -1:
        return -1
    if not 60 <= value <= 604800:
        raise InvalidParameterValueException(
            "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800 seconds."
        )
    return value


def _destination(config: dict[str, Any] | None) -> dict[str, Any]:
    destination = ((config or {}).get("OnFailure") or {}).get("Destination")
    return {"OnFailure": {"Destination": destination} if destination else {}}


def _epoch(value: Any) -> float:
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)


def _refuse_duplicate(connection: Connection, record: MappingRecord) -> None:
    """AWS's ResourceConflictException for a second mapping of the same source to the same function."""
    same_queues = (record.config.get("Queues"), record.config.get("Topics"))
    for other in records.list_mappings(connection, record.scope):
        if (
            other.event_source_arn != record.event_source_arn
            or other.function_arn != record.function_arn
            or (other.config.get("Queues"), other.config.get("Topics")) != same_queues
            or other.state == MappingState.DELETING
        ):
            continue
        function_name = record.function_arn.split(":")[6]
        if _service(record.event_source_arn) == "sqs":
            message = (
                f'An event source mapping with SQS arn (" {record.event_source_arn} ") and function '
                f'(" {function_name} ") already exists. Please update or delete the existing mapping '
                f"with UUID {other.uuid}"
            )
        elif same_queues != (None, None):
            what = "queues" if same_queues[0] else "topics"
            names = ",".join(same_queues[0] or same_queues[1] or [])
            message = (
                f'An event source mapping with event source ("{record.event_source_arn}"), function '
                f'("{record.function_arn}"), {what} ("{names}") already exists. Please update or delete '
                f"the existing mapping with UUID {other.uuid}"
            )
        else:
            message = (
                f'The event source arn (" {record.event_source_arn} ") and function (" {function_name} ") '
                f"provided mapping already exists. Please update or delete the existing mapping with "
                f"UUID {other.uuid}"
            )
        raise ResourceConflictException(message)
