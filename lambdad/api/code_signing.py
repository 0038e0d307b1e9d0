"""Lambda's code signing configs: Create/Get/Update/Delete/ListCodeSigningConfigs,
ListFunctionsByCodeSigningConfig, Put/Get/DeleteFunctionCodeSigningConfig."""

from __future__ import annotations

from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.models import aws_timestamp
from lambdad.store.signing import ConfigRecord

table = OperationTable()


def code_signing_config(record: ConfigRecord) -> dict[str, Any]:
    """A config in AWS's shape."""
    return {
        "CodeSigningConfigId": record.config_id,
        "CodeSigningConfigArn": record.arn,
        "Description": record.description,
        "AllowedPublishers": {"SigningProfileVersionArns": list(record.allowed_publishers)},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": record.untrusted_artifact},
        "LastModified": aws_timestamp(record.last_modified),
    }


@table.operation("CreateCodeSigningConfig")
def create_code_signing_config(call: Call) -> dict[str, Any]:
    return {
        "CodeSigningConfig": code_signing_config(call.services.code_signing.create(call.scope, call.params))
    }


@table.operation("GetCodeSigningConfig")
def get_code_signing_config(call: Call) -> dict[str, Any]:
    record = call.services.code_signing.get(call.scope, call.params["CodeSigningConfigArn"])
    return {"CodeSigningConfig": code_signing_config(record)}


@table.operation("UpdateCodeSigningConfig")
def update_code_signing_config(call: Call) -> dict[str, Any]:
    return {
        "CodeSigningConfig": code_signing_config(call.services.code_signing.update(call.scope, call.params))
    }


@table.operation("DeleteCodeSigningConfig")
def delete_code_signing_config(call: Call) -> dict[str, Any]:
    call.services.code_signing.delete(call.scope, call.params["CodeSigningConfigArn"])
    return {}


@table.operation("ListCodeSigningConfigs")
def list_code_signing_configs(call: Call) -> dict[str, Any]:
    page = call.services.code_signing.list(call.scope, call.params.get("Marker"), call.params.get("MaxItems"))
    return {
        "CodeSigningConfigs": [code_signing_config(record) for record in page.configs],
        "NextMarker": page.next_marker,
    }


@table.operation("ListFunctionsByCodeSigningConfig")
def list_functions_by_code_signing_config(call: Call) -> dict[str, Any]:
    arns, next_marker = call.services.code_signing.functions_using(
        call.scope,
        call.params["CodeSigningConfigArn"],
        call.params.get("Marker"),
        call.params.get("MaxItems"),
    )
    return {"FunctionArns": arns, "NextMarker": next_marker}


@table.operation("PutFunctionCodeSigningConfig")
def put_function_code_signing_config(call: Call) -> dict[str, Any]:
    arn = call.params["CodeSigningConfigArn"]
    name = call.services.code_signing.put_for_function(call.scope, call.params["FunctionName"], arn)
    return {"CodeSigningConfigArn": arn, "FunctionName": name}


@table.operation("GetFunctionCodeSigningConfig")
def get_function_code_signing_config(call: Call) -> dict[str, Any]:
    name, arn = call.services.code_signing.get_for_function(call.scope, call.params["FunctionName"])
    # A function without a config: AWS answers 200 with neither member.
    return {"CodeSigningConfigArn": arn, "FunctionName": name} if arn else {}


@table.operation("DeleteFunctionCodeSigningConfig")
def delete_function_code_signing_config(call: Call) -> dict[str, Any]:
    call.services.code_signing.delete_for_function(call.scope, call.params["FunctionName"])
    return {}
