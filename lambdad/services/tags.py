"""Tags on functions and event source mappings (TagResource, UntagResource, ListTags)."""

from __future__ import annotations

from sqlalchemy import Connection

from lambdad.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdad.models import Scope, parse_function_ref
from lambdad.services import limits
from lambdad.services.changes import FunctionChanges
from lambdad.store import Database
from lambdad.store import event_source_mappings as mapping_records
from lambdad.store import functions as function_records
from lambdad.store import tags as tag_records

_QUALIFIED = "Tags on function aliases and versions are not supported. Please specify a function ARN."


NETWORK_TAG = "lambdad:network"
NETWORK_MODES = ("default", "none", "host")


HOST_NETWORK_REFUSED = (
    f"Tag {NETWORK_TAG}=host is not allowed on this server: the host network reaches every service on "
    "the host's loopback, so the operator must start lambdad serve with --allow-host-network "
    "(LAMBDAD_ALLOW_HOST_NETWORK=1) to allow it."
)


def check_lambdad_tags(tags: dict[str, str], host_network_allowed: bool) -> None:
    """Tags that configure lambdad itself must hold values it understands, and weaken isolation only
    where the operator allowed it."""
    mode = tags.get(NETWORK_TAG)
    if mode is not None and mode not in NETWORK_MODES:
        raise InvalidParameterValueException(
            f"Tag {NETWORK_TAG} must be one of {', '.join(NETWORK_MODES)}, not {mode!r}."
        )
    if mode == "host" and not host_network_allowed:
        raise InvalidParameterValueException(HOST_NETWORK_REFUSED)


class TagService:
    """Tags keyed by resource ARN: functions and event source mappings.

    One tag configures lambdad: ``lambdad:network`` (default, none or host) chooses the network of the
    function's sandboxes, since AWS's API has no member for it.
    """

    def __init__(
        self, database: Database, changes: FunctionChanges, *, host_network_allowed: bool = False
    ) -> None:
        self._database = database
        self._changes = changes
        self._host_network_allowed = host_network_allowed

    def get(self, scope: Scope, resource: str) -> dict[str, str]:
        """A resource's tags."""
        with self._database.read() as connection:
            arn = self._existing_arn(connection, scope, resource)
            return tag_records.get_tags(connection, arn)

    def tag(self, scope: Scope, resource: str, tags: dict[str, str]) -> None:
        """Add or overwrite tags."""
        if not tags:
            raise InvalidParameterValueException("An error occurred and the request cannot be processed.")
        check_lambdad_tags(tags, self._host_network_allowed)
        with self._database.write() as connection:
            arn = self._existing_arn(connection, scope, resource)
            merged = {**tag_records.get_tags(connection, arn), **tags}
            if len(merged) > limits.TAGS_MAX:
                raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
            tag_records.put_tags(connection, arn, tags)
        self._notify(arn)

    def untag(self, scope: Scope, resource: str, keys: list[str]) -> None:
        """Remove tags; keys that are not there are ignored."""
        with self._database.write() as connection:
            arn = self._existing_arn(connection, scope, resource)
            tag_records.remove_tags(connection, arn, keys)
        self._notify(arn)

    def _notify(self, arn: str) -> None:
        _, _, _, region, account, kind, name = arn.split(":", 6)
        if kind == "function":
            self._changes.notify(Scope(account, region), name)

    def _existing_arn(self, connection: Connection, scope: Scope, resource: str) -> str:
        parts = resource.split(":")
        if len(parts) == 7 and parts[5] == "event-source-mapping":
            mapping = mapping_records.get_mapping(connection, parts[6])
            if parts[4] != scope.account or mapping is None or mapping.region != parts[3]:
                raise ResourceNotFoundException(f"Event source mapping not found: {resource}")
            return resource
        return self._existing_function_arn(connection, scope, resource)

    def _existing_function_arn(self, connection: Connection, scope: Scope, resource: str) -> str:
        ref = parse_function_ref(resource)
        if ref is None or not ref.is_arn:
            raise ResourceNotFoundException(f"Function not found: {resource}")
        if ref.qualifier:
            raise InvalidParameterValueException(_QUALIFIED)
        region = ref.region or scope.region
        arn = f"arn:aws:lambda:{region}:{ref.account}:function:{ref.name}"
        if ref.account != scope.account or not function_records.function_exists(
            connection, Scope(scope.account, region), ref.name
        ):
            raise ResourceNotFoundException(f"Function not found: {arn}")
        return arn
