"""Function URL operations: CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
DeleteFunctionUrlConfig, ListFunctionUrlConfigs. (``api/url_serving.py`` serves the URLs themselves.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambdad.api.operations import Call, OperationTable
from lambdad.models import Scope
from lambdad.services.urls import DEFAULT_INVOKE_MODE, UrlService
from lambdad.store.urls import FunctionUrl

table = OperationTable()


def url_configuration(
    url: FunctionUrl, scope: Scope, urls: UrlService, *, modified: bool = True, full: bool = True
) -> dict[str, Any]:
    """A FunctionUrlConfig as AWS answers it: Create leaves out LastModifiedTime; Create and Update give
    InvokeMode only once it was set, Get and List always (BUFFERED by default)."""
    config: dict[str, Any] = {
        "FunctionUrl": urls.url_of(url),
        "FunctionArn": scope.function_arn(url.function_name, url.qualifier),
        "AuthType": url.auth_type,
        "CreationTime": _iso(url.created_at),
    }
    if url.cors is not None:
        config["Cors"] = url.cors
    if modified:
        config["LastModifiedTime"] = _iso(url.last_modified)
    if full or url.invoke_mode is not None:
        config["InvokeMode"] = url.invoke_mode or DEFAULT_INVOKE_MODE
    return config


@table.operation("CreateFunctionUrlConfig")
def create_function_url_config(call: Call) -> dict[str, Any]:
    params = call.params
    urls = call.services.urls
    url = urls.create(
        call.scope,
        params["FunctionName"],
        params.get("Qualifier"),
        params["AuthType"],
        params.get("Cors"),
        params.get("InvokeMode"),
    )
    return url_configuration(url, call.scope, urls, modified=False, full=False)


@table.operation("GetFunctionUrlConfig")
def get_function_url_config(call: Call) -> dict[str, Any]:
    urls = call.services.urls
    url = urls.get(call.scope, call.params["FunctionName"], call.params.get("Qualifier"))
    return url_configuration(url, call.scope, urls)


@table.operation("UpdateFunctionUrlConfig")
def update_function_url_config(call: Call) -> dict[str, Any]:
    params = call.params
    urls = call.services.urls
    url = urls.update(
        call.scope,
        params["FunctionName"],
        params.get("Qualifier"),
        auth_type=params.get("AuthType"),
        cors=params.get("Cors"),
        invoke_mode=params.get("InvokeMode"),
    )
    return url_configuration(url, call.scope, urls, full=False)


@table.operation("DeleteFunctionUrlConfig")
def delete_function_url_config(call: Call) -> dict[str, Any]:
    call.services.urls.delete(call.scope, call.params["FunctionName"], call.params.get("Qualifier"))
    return {}


@table.operation("ListFunctionUrlConfigs")
def list_function_url_configs(call: Call) -> dict[str, Any]:
    urls = call.services.urls
    page = urls.list(
        call.scope,
        call.params["FunctionName"],
        marker=call.params.get("Marker"),
        max_items=call.params.get("MaxItems"),
    )
    return {
        "FunctionUrlConfigs": [url_configuration(url, call.scope, urls) for url in page.urls],
        "NextMarker": page.next_marker,
    }


def _iso(moment: datetime) -> str:
    """AWS's CreationTime/LastModifiedTime: ISO-8601 in UTC, ``2026-11-25T02:36:09.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
