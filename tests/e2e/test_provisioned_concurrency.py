"""Provisioned concurrency end to end: config calls and their errors compared with AWS's recordings, and
environments really started ahead of invocations, kept through idle reaping, preferred by invokes (no
Init Duration), spilling over to on-demand ones, stopped when the config goes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.invoke_support import (
    deploy_python,
    eventually,
    health,
    invoke,
    report_fields,
    server_fixture,
    start_server,
    tail,
    unique,
)
from tests.recordings import differences, recorded
from tests.support import Server

pytestmark = pytest.mark.e2e
# Idle on-demand environments are reaped after a second; provisioned ones must survive that.
server = server_fixture("--idle-timeout", "1")
API = "test_lambda_api.snapshot.json"
EXCEPTIONS = "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions"
LIFECYCLE = "TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle"

HANDLER = """
import os, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "version": context.function_version}
"""


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


def error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return dict(raised.value.response)


def same_error(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return differences(
        {"Error": actual["Error"], "Status": actual["ResponseMetadata"]["HTTPStatusCode"]},
        {"Error": expected["Error"], "Status": expected["ResponseMetadata"]["HTTPStatusCode"]},
    )


def wait_ready(client: Any, name: str, qualifier: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        config = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert config["Status"] != "FAILED", config
        return dict(config) if config["Status"] == "READY" else None

    return eventually(ready, timeout=60, interval=0.2)


def test_config_errors_match_aws(client: Any) -> None:
    name = unique("pc-errors")
    deploy_python(client, name, HANDLER)
    client.publish_version(FunctionName=name)

    def expect(key: str, call: Any, **params: Any) -> None:
        assert same_error(error(call, **params), recorded(API, EXCEPTIONS, key)) == [], key

    get = client.get_provisioned_concurrency_config
    delete = client.delete_provisioned_concurrency_config
    put = client.put_provisioned_concurrency_config
    expect("get_provisioned_config_doesnotexist", get, FunctionName=name, Qualifier="1")
    expect("get_provisioned_functionname_doesnotexist", get, FunctionName="doesnotexist", Qualifier="noalias")
    expect("get_provisioned_qualifier_doesnotexist", get, FunctionName=name, Qualifier="noalias")
    expect("get_provisioned_version_doesnotexist", get, FunctionName=name, Qualifier="10")
    expect("get_provisioned_latest", get, FunctionName=name, Qualifier="$LATEST")
    listed = client.list_provisioned_concurrency_configs(FunctionName=name)
    assert listed["ProvisionedConcurrencyConfigs"] == []
    expect(
        "list_provisioned_functionname_doesnotexist",
        client.list_provisioned_concurrency_configs,
        FunctionName="doesnotexist",
    )
    expect("delete_provisioned_functionname_doesnotexist", delete, FunctionName="doesnotexist", Qualifier="1")
    expect("delete_provisioned_qualifier_doesnotexist", delete, FunctionName=name, Qualifier="noalias")
    expect("delete_provisioned_version_doesnotexist", delete, FunctionName=name, Qualifier="10")
    expect("delete_provisioned_latest", delete, FunctionName=name, Qualifier="$LATEST")
    assert delete(FunctionName=name, Qualifier="1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect(
        "put_provisioned_functionname_doesnotexist_alias",
        put,
        FunctionName="doesnotexist",
        Qualifier="noalias",
        ProvisionedConcurrentExecutions=1,
    )
    expect(
        "put_provisioned_functionname_doesnotexist_version",
        put,
        FunctionName="doesnotexist",
        Qualifier="1",
        ProvisionedConcurrentExecutions=1,
    )
    expect(
        "put_provisioned_qualifier_doesnotexist",
        put,
        FunctionName=name,
        Qualifier="doesnotexist",
        ProvisionedConcurrentExecutions=1,
    )
    expect(
        "put_provisioned_version_doesnotexist",
        put,
        FunctionName=name,
        Qualifier="10",
        ProvisionedConcurrentExecutions=1,
    )
    expect(
        "put_provisioned_latest",
        put,
        FunctionName=name,
        Qualifier="$LATEST",
        ProvisionedConcurrentExecutions=1,
    )


def test_zero_is_refused_like_aws(server: Server) -> None:
    unvalidated = server.client(parameter_validation=False)
    name = unique("pc-zero")
    deploy_python(unvalidated, name, HANDLER)
    unvalidated.publish_version(FunctionName=name)
    answer = error(
        unvalidated.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=0,
    )
    assert same_error(answer, recorded(API, EXCEPTIONS, "put_provisioned_invalid_param_0")) == []


def test_lifecycle_matches_aws(client: Any, server: Server) -> None:
    name = unique("pc-life")
    deploy_python(client, name, HANDLER)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    put = client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    expected = recorded(API, LIFECYCLE, "put_provisioned_on_version")
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert differences(put, expected) == []
    conflict = error(
        client.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="live",
        ProvisionedConcurrentExecutions=1,
    )
    assert same_error(conflict, recorded(API, LIFECYCLE, "put_provisioned_on_alias_versionconflict")) == []
    ready = wait_ready(client, name, "1")
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 1
    assert ready["AvailableProvisionedConcurrentExecutions"] == 1
    listed = client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["1"]
    assert listed[0]["Status"] == "READY"

    deleted = client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    missing = error(client.get_provisioned_concurrency_config, FunctionName=name, Qualifier="1")
    assert same_error(missing, recorded(API, LIFECYCLE, "get_provisioned_version_postdelete")) == []

    on_alias = client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert differences(on_alias, recorded(API, LIFECYCLE, "put_provisioned_on_alias")) == []
    conflict = error(
        client.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=1,
    )
    assert same_error(conflict, recorded(API, LIFECYCLE, "put_provisioned_on_version_conflict")) == []
    wait_ready(client, name, "live")
    _, payload = invoke(client, name, {}, Qualifier="live")
    assert payload == {"init": "provisioned-concurrency", "version": "1"}

    before = health(server)["environments"]
    client.delete_alias(FunctionName=name, Name="live")
    gone = error(client.get_provisioned_concurrency_config, FunctionName=name, Qualifier="live")
    assert same_error(gone, recorded(API, LIFECYCLE, "get_provisioned_alias_postaliasdelete")) == []
    assert (
        client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    )
    eventually(lambda: health(server)["environments"] < before)


def test_limits(client: Any) -> None:
    name = unique("pc-limits")
    deploy_python(client, name, HANDLER)
    client.publish_version(FunctionName=name)
    limit = client.get_account_settings()["AccountLimit"]["ConcurrentExecutions"]
    too_many = error(
        client.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=limit + 1,
    )
    expected = recorded(
        API,
        "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_limits",
        "put_provisioned_concurrency_account_limit_exceeded",
    )
    assert same_error(too_many, expected) == []
    below_minimum = error(
        client.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=limit,
    )
    expected = recorded(
        API,
        "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_limits",
        "put_provisioned_concurrency_below_unreserved_min_value",
    )
    assert same_error(below_minimum, expected) == []
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    over_reserved = error(
        client.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=3,
    )
    assert over_reserved["Error"]["Code"] == "InvalidParameterValueException"


def test_provisioned_environments_serve_first_survive_reaping_and_stop(client: Any, server: Server) -> None:
    name = unique("pc-run")
    deploy_python(client, name, HANDLER)
    client.publish_version(FunctionName=name)
    client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    wait_ready(client, name, "1")
    time.sleep(2.5)  # several idle timeouts: on-demand environments are reaped by now, not provisioned ones
    assert health(server)["environments"] >= 1
    first, payload = invoke(client, name, {}, Qualifier="1", LogType="Tail")
    assert payload == {"init": "provisioned-concurrency", "version": "1"}
    assert "Init Duration" not in report_fields(tail(first))

    # Two at once with one provisioned: one runs provisioned, the other spills to on-demand.
    results: list[Any] = []

    def call() -> None:
        results.append(invoke(client, name, {"sleep": 1}, Qualifier="1")[1])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result["init"] for result in results) == ["on-demand", "provisioned-concurrency"]

    time.sleep(2.5)  # the on-demand environment is reaped; the provisioned one stays
    provisioned = health(server)["environments"]
    assert provisioned >= 1
    client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    eventually(lambda: health(server)["environments"] == provisioned - 1)
    _, latest = invoke(client, name, {})  # $LATEST is never provisioned
    assert latest["init"] == "on-demand"


def test_configs_are_provisioned_again_after_a_restart(tmp_path: Any) -> None:
    first = start_server(tmp_path)
    try:
        client = first.client()
        name = unique("pc-restart")
        deploy_python(client, name, HANDLER)
        client.publish_version(FunctionName=name)
        client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
        )
        wait_ready(client, name, "1")
    finally:
        first.stop(timeout=60)
    second = start_server(tmp_path)
    try:
        client = second.client()
        wait_ready(client, name, "1")
        assert health(second)["environments"] >= 1
        first_invoke, payload = invoke(client, name, {}, Qualifier="1", LogType="Tail")
        assert payload["init"] == "provisioned-concurrency"
        assert "Init Duration" not in report_fields(tail(first_invoke))
    finally:
        second.stop(timeout=60)
