"""Event source mappings: Create/Get/Update/Delete/ListEventSourceMappings."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.services.event_source_mappings import EventSourceMappingService
from lambdad.store.event_source_mappings import MappingRecord

table = OperationTable()


def render(service: EventSourceMappingService, record: MappingRecord) -> dict[str, Any]:
    """A mapping as AWS answers it (``EventSourceMappingConfiguration``)."""
    answer: dict[str, Any] = {
        **record.config,
        "UUID": record.uuid,
        "EventSourceArn": record.event_source_arn,
        "EventSourceMappingArn": service.arn(record),
        "FunctionArn": record.function_arn,
        "LastModified": record.last_modified,
        "State": record.state,
        "StateTransitionReason": record.state_transition_reason,
    }
    if record.last_processing_result is not None:
        answer["LastProcessingResult"] = record.last_processing_result
    return answer


@table.operation("CreateEventSourceMapping")
def create_event_source_mapping(call: Call) -> dict[str, Any]:
    service = call.services.event_source_mappings
    return render(service, service.create(call.scope, call.params))


@table.operation("GetEventSourceMapping")
def get_event_source_mapping(call: Call) -> dict[str, Any]:
    service = call.services.event_source_mappings
    return render(service, service.get(call.scope, call.params["UUID"]))


@table.operation("UpdateEventSourceMapping")
def update_event_source_mapping(call: Call) -> dict[str, Any]:
    service = call.services.event_source_mappings
    return render(service, service.update(call.scope, call.params["UUID"], call.params))


@table.operation("DeleteEventSourceMapping")
def delete_event_source_mapping(call: Call) -> dict[str, Any]:
    service = call.services.event_source_mappings
    return render(service, service.delete(call.scope, call.params["UUID"]))


@table.operation("ListEventSourceMappings")
def list_event_source_mappings(call: Call) -> dict[str, Any]:
    service = call.services.event_source_mappings
    page = service.list(
        call.scope,
        event_source_arn=call.params.get("EventSourceArn"),
        function_name=call.params.get("FunctionName"),
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "EventSourceMappings": [render(service, record) for record in page.mappings],
        "NextMarker": page.next_marker,
    }
