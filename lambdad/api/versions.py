"""Version operations: PublishVersion, ListVersionsByFunction."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.api.render import function_configuration
from lambdad.services.capacity_providers import check_publish_to

table = OperationTable()


@table.operation("PublishVersion")
def publish_version(call: Call) -> dict[str, Any]:
    check_publish_to(call.params)
    version = call.services.versions.publish(
        call.scope,
        call.params["FunctionName"],
        code_sha256=call.params.get("CodeSha256"),
        revision_id=call.params.get("RevisionId"),
        description=call.params.get("Description"),
    )
    return function_configuration(version, call.scope)


@table.operation("ListVersionsByFunction")
def list_versions_by_function(call: Call) -> dict[str, Any]:
    page = call.services.versions.list(
        call.scope,
        call.params["FunctionName"],
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        # Every ARN here is qualified, $LATEST's too, as AWS lists them.
        "Versions": [
            function_configuration(
                version, call.scope, arn=call.scope.function_arn(version.name, version.version), listed=True
            )
            for version in page.versions
        ],
        "NextMarker": page.next_marker,
    }
