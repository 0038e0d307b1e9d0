"""The AWS-compatible HTTP API: model-driven parsing and validation, one module per resource."""

from lambdad.api import (
    account,
    aliases,
    capacity_providers,
    code_signing,
    concurrency,
    event_invoke_configs,
    event_source_mappings,
    function_settings,
    functions,
    invoke,
    layers,
    permissions,
    provisioned,
    tags,
    urls,
    versions,
)
from lambdad.api.code_links import CodeLinks
from lambdad.api.dispatch import AwsApi, ServiceApi
from lambdad.api.operations import OperationTable, Services


def operation_table() -> OperationTable:
    """Every operation lambdad serves."""
    return functions.table.merge(
        versions.table,
        aliases.table,
        tags.table,
        account.table,
        concurrency.table,
        invoke.table,
        urls.table,
        permissions.table,
        event_invoke_configs.table,
        function_settings.table,
        layers.table,
        provisioned.table,
        capacity_providers.table,
        event_source_mappings.table,
        code_signing.table,
    )


def lambda_api() -> ServiceApi:
    """The Lambda API: its model, its handlers, its error conventions (the dispatcher's defaults)."""
    return ServiceApi("lambda", operation_table())


__all__ = ["AwsApi", "CodeLinks", "OperationTable", "ServiceApi", "Services", "lambda_api", "operation_table"]
