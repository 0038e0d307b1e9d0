"""Capacity providers (Lambda Managed Instances) through boto3 against a real server: AWS's shapes,
states, errors and pagination, functions joining a provider, and function scaling configs."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

import botocore.exceptions
import pytest

from tests.e2e.invoke_support import eventually, server_fixture, unique
from tests.support import ROLE, Server, create_function, make_zip

server = server_fixture("--spares", "0")

VPC = {"SubnetIds": ["subnet-0a1b2c"], "SecurityGroupIds": ["sg-0a1b2c"]}
PERMISSIONS = {"CapacityProviderOperatorRoleArn": "arn:aws:iam::000000000000:role/operator"}


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


def create_provider(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    response = client.create_capacity_provider(
        CapacityProviderName=name, VpcConfig=VPC, PermissionsConfig=PERMISSIONS, **extra
    )
    return dict(response)


def active_provider(client: Any, name: str) -> dict[str, Any]:
    create_provider(client, name)
    return eventually(lambda: state_is(client, name, "Active"))


def state_is(client: Any, name: str, state: str) -> dict[str, Any] | None:
    provider = client.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]
    return dict(provider) if provider["State"] == state else None


def error_of(call: Any, **params: Any) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def managed(provider_arn: str, **extra: Any) -> dict[str, Any]:
    return {"LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": provider_arn, **extra}}


def test_create_answers_pending_then_settles_active(client: Any) -> None:
    name = unique("cp")
    created = create_provider(client, name, Tags={"team": "a"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    provider = created["CapacityProvider"]
    assert (
        provider["CapacityProviderArn"] == f"arn:aws:lambda:us-east-1:000000000000:capacity-provider:{name}"
    )
    assert provider["State"] == "Pending"
    assert provider["VpcConfig"] == VPC
    assert provider["PermissionsConfig"] == PERMISSIONS
    assert provider["InstanceRequirements"] == {"Architectures": ["x86_64"]}
    settled = eventually(lambda: state_is(client, name, "Active"))
    assert settled["CapacityProviderArn"] == provider["CapacityProviderArn"]
    # By ARN as well as by name.
    by_arn = client.get_capacity_provider(CapacityProviderName=provider["CapacityProviderArn"])
    assert by_arn["CapacityProvider"]["State"] == "Active"


def test_errors_for_duplicates_missing_and_bad_parameters(client: Any) -> None:
    name = unique("cp")
    active_provider(client, name)
    status, code, _ = error_of(
        client.create_capacity_provider,
        CapacityProviderName=name,
        VpcConfig=VPC,
        PermissionsConfig=PERMISSIONS,
    )
    assert (status, code) == (409, "ResourceConflictException")
    missing = unique("missing")
    status, code, message = error_of(client.get_capacity_provider, CapacityProviderName=missing)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert missing in message
    for call in (client.delete_capacity_provider, client.update_capacity_provider):
        assert error_of(call, CapacityProviderName=missing)[:2] == (404, "ResourceNotFoundException")
    assert error_of(client.list_function_versions_by_capacity_provider, CapacityProviderName=missing)[:2] == (
        404,
        "ResourceNotFoundException",
    )


def test_update_changes_scaling_and_keeps_the_rest(client: Any) -> None:
    name = unique("cp")
    active_provider(client, name)
    scaling = {
        "MaxVCpuCount": 16,
        "ScalingMode": "Manual",
        "ScalingPolicies": [
            {"PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization", "TargetValue": 60.0}
        ],
    }
    updated = client.update_capacity_provider(
        CapacityProviderName=name, CapacityProviderScalingConfig=scaling
    )
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert updated["CapacityProvider"]["CapacityProviderScalingConfig"] == scaling
    got = client.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]
    assert got["CapacityProviderScalingConfig"] == scaling
    assert got["VpcConfig"] == VPC


def test_list_pages_and_filters_by_state(client: Any) -> None:
    prefix = unique("lp")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        active_provider(client, name)
    seen: list[str] = []
    marker: dict[str, str] = {}
    while True:
        page = client.list_capacity_providers(MaxItems=1, **marker)
        assert len(page["CapacityProviders"]) <= 1
        seen += [p["CapacityProviderArn"].rsplit(":", 1)[1] for p in page["CapacityProviders"]]
        if "NextMarker" not in page:
            break
        marker = {"Marker": page["NextMarker"]}
    assert [name for name in seen if name.startswith(prefix)] == names
    paginated = client.get_paginator("list_capacity_providers").paginate(State="Active")
    active = {
        p["CapacityProviderArn"].rsplit(":", 1)[1] for page in paginated for p in page["CapacityProviders"]
    }
    assert set(names) <= active
    pending = client.list_capacity_providers(State="Pending")["CapacityProviders"]
    assert not {p["CapacityProviderArn"].rsplit(":", 1)[1] for p in pending} & set(names)


def test_functions_join_a_provider_which_then_cannot_be_deleted(client: Any) -> None:
    name = unique("cp")
    arn = active_provider(client, name)["CapacityProviderArn"]
    function = unique("fn")
    config = managed(arn, PerExecutionEnvironmentMaxConcurrency=4)
    created = create_function(client, function, Runtime="python3.12", CapacityProviderConfig=config)
    assert created["CapacityProviderConfig"] == config
    assert client.get_function_configuration(FunctionName=function)["CapacityProviderConfig"] == config
    client.publish_version(FunctionName=function)
    listed = client.list_function_versions_by_capacity_provider(CapacityProviderName=name)
    assert listed["CapacityProviderArn"] == arn
    assert [v["FunctionArn"].rsplit(":", 1)[1] for v in listed["FunctionVersions"]] == ["$LATEST", "1"]
    assert {v["State"] for v in listed["FunctionVersions"]} == {"Active"}
    first = client.list_function_versions_by_capacity_provider(CapacityProviderName=name, MaxItems=1)
    assert len(first["FunctionVersions"]) == 1
    rest = client.list_function_versions_by_capacity_provider(
        CapacityProviderName=name, Marker=first["NextMarker"]
    )
    assert rest["FunctionVersions"] == listed["FunctionVersions"][1:]

    status, code, message = error_of(client.delete_capacity_provider, CapacityProviderName=name)
    assert (status, code) == (409, "ResourceConflictException")
    assert "in use" in message

    client.delete_function(FunctionName=function)
    deleted = client.delete_capacity_provider(CapacityProviderName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["CapacityProvider"]["State"] == "Deleting"

    def gone() -> bool | None:
        try:
            client.get_capacity_provider(CapacityProviderName=name)
        except client.exceptions.ResourceNotFoundException:
            return True
        return None

    eventually(gone)


def test_a_function_naming_a_missing_provider_is_refused(client: Any) -> None:
    missing = f"arn:aws:lambda:us-east-1:000000000000:capacity-provider:{unique('none')}"
    status, code, message = error_of(
        client.create_function,
        FunctionName=unique("fn"),
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
        CapacityProviderConfig=managed(missing),
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert missing in message
    # The compute type is chosen at creation: a function of no provider cannot join one later...
    function = unique("fn")
    create_function(client, function)
    arn = active_provider(client, unique("cp"))["CapacityProviderArn"]
    status, code, message = error_of(
        client.update_function_configuration, FunctionName=function, CapacityProviderConfig=managed(arn)
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "when a function is created" in message
    # ... while a provider's function may change its settings, not to a provider that does not exist.
    managed_function = unique("fn")
    create_function(client, managed_function, CapacityProviderConfig=managed(arn))
    changed = managed(arn, PerExecutionEnvironmentMaxConcurrency=2)
    updated = client.update_function_configuration(
        FunctionName=managed_function, CapacityProviderConfig=changed
    )
    assert updated["CapacityProviderConfig"] == changed
    client.get_waiter("function_updated_v2").wait(FunctionName=managed_function, WaiterConfig={"Delay": 0.1})
    status, code, message = error_of(
        client.update_function_configuration,
        FunctionName=managed_function,
        CapacityProviderConfig=managed(missing),
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert missing in message


def test_function_scaling_config_per_published_version(client: Any) -> None:
    arn = active_provider(client, unique("cp"))["CapacityProviderArn"]
    function = unique("fn")
    create_function(client, function, CapacityProviderConfig=managed(arn))
    client.publish_version(FunctionName=function)
    put = client.put_function_scaling_config(
        FunctionName=function,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 2},
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["FunctionState"] == "Active"
    got = client.get_function_scaling_config(FunctionName=function, Qualifier="1")
    assert got["FunctionArn"].endswith(f":function:{function}:1")
    assert got["RequestedFunctionScalingConfig"] == {
        "MinExecutionEnvironments": 1,
        "MaxExecutionEnvironments": 2,
    }
    assert got["AppliedFunctionScalingConfig"] == got["RequestedFunctionScalingConfig"]

    status, code, _ = error_of(
        client.put_function_scaling_config,
        FunctionName=function,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 3, "MaxExecutionEnvironments": 2},
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert error_of(client.get_function_scaling_config, FunctionName=function, Qualifier="7")[:2] == (
        404,
        "ResourceNotFoundException",
    )
    plain = unique("fn")
    create_function(client, plain)
    client.publish_version(FunctionName=plain)
    assert error_of(
        client.put_function_scaling_config,
        FunctionName=plain,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1},
    )[:2] == (400, "InvalidParameterValueException")


def test_scaling_config_needs_a_published_qualifier(server: Server) -> None:
    # botocore's model refuses $LATEST client-side; the server refuses it too (validation off).
    client = server.client(parameter_validation=False)
    status, code, message = error_of(
        client.get_function_scaling_config, FunctionName=unique("fn"), Qualifier="$LATEST"
    )
    assert (status, code) == (400, "ValidationException")
    assert "qualifier" in message.lower()


# --- the data plane: a node runs only its provider's versions ----------------------------------------

fleet_server = server_fixture("--spares", "0", "--capacity-provider", "fleet")

SLEEPY = (
    "import time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'ok'\n"
)


@pytest.fixture(scope="module")
def fleet(fleet_server: Server) -> tuple[Any, str]:
    """A client of the node started with ``--capacity-provider fleet``, and that provider's ARN."""
    client = fleet_server.client()
    return client, active_provider(client, "fleet")["CapacityProviderArn"]


def deploy_managed(client: Any, provider_arn: str, source: str = SLEEPY) -> str:
    name = unique("mi")
    create_function(
        client,
        name,
        Code={"ZipFile": make_zip({"handler.py": source})},
        Timeout=30,
        CapacityProviderConfig=managed(provider_arn),
    )
    return name


def nodes_view(server: Server) -> dict[str, Any]:
    return dict(server.own("/_lambdad/nodes", timeout=5)["Nodes"][0])


def test_unqualified_invokes_run_the_newest_published_version(fleet: tuple[Any, str]) -> None:
    client, arn = fleet
    name = deploy_managed(client, arn)
    status, code, message = error_of(client.invoke, FunctionName=name)
    assert (status, code) == (400, "NoPublishedVersionException")
    assert name in message
    # $LATEST.PUBLISHED is not there yet: asked for, it is refused rather than published as a number.
    status, code, message = error_of(client.publish_version, FunctionName=name, PublishTo="LATEST_PUBLISHED")
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "$LATEST.PUBLISHED" in message
    client.publish_version(FunctionName=name)
    response = client.invoke(FunctionName=name)
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "1"
    assert json.load(response["Payload"]) == "ok"
    assert client.invoke(FunctionName=name, Qualifier="1")["ExecutedVersion"] == "1"


def test_a_node_runs_only_its_providers_versions(fleet: tuple[Any, str], client: Any) -> None:
    fleet_client, _ = fleet
    # A function of no provider is not run by the fleet's node...
    plain = unique("plain")
    create_function(fleet_client, plain)
    status, code, message = error_of(fleet_client.invoke, FunctionName=plain)
    assert (status, code) == (429, "TooManyRequestsException")
    assert "capacity provider fleet" in message
    # ... and a provider's function is not run by a node outside it.
    arn = active_provider(client, unique("elsewhere"))["CapacityProviderArn"]
    name = deploy_managed(client, arn)
    client.publish_version(FunctionName=name)
    status, code, message = error_of(client.invoke, FunctionName=name, Qualifier="1")
    assert (status, code) == (429, "TooManyRequestsException")
    assert "no node of capacity provider" in message


def test_max_execution_environments_caps_a_version(fleet: tuple[Any, str], fleet_server: Server) -> None:
    client, arn = fleet
    name = deploy_managed(client, arn)
    client.publish_version(FunctionName=name)
    client.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MaxExecutionEnvironments": 1}
    )
    with concurrent.futures.ThreadPoolExecutor(1) as background:
        busy = background.submit(
            client.invoke, FunctionName=name, Qualifier="1", Payload=json.dumps({"sleep": 3}).encode()
        )
        eventually(lambda: nodes_view(fleet_server)["BusyEnvironments"] >= 1)
        status, code, _ = error_of(client.invoke, FunctionName=name, Qualifier="1")
        assert (status, code) == (429, "TooManyRequestsException")
        assert busy.result()["StatusCode"] == 200
    # Its one environment, idle again, takes the next invocation.
    assert client.invoke(FunctionName=name, Qualifier="1")["StatusCode"] == 200


def test_min_execution_environments_are_kept_warm(fleet: tuple[Any, str], fleet_server: Server) -> None:
    client, arn = fleet
    name = deploy_managed(client, arn)
    client.publish_version(FunctionName=name)
    before = nodes_view(fleet_server)["WarmEnvironments"]
    client.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MinExecutionEnvironments": 2}
    )
    eventually(lambda: nodes_view(fleet_server)["WarmEnvironments"] == before + 2, timeout=60)
    client.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MinExecutionEnvironments": 0}
    )
    eventually(lambda: nodes_view(fleet_server)["WarmEnvironments"] == before, timeout=60)


def test_the_aws_cli_drives_capacity_providers(server: Server) -> None:
    name = unique("cli")
    created = server.aws_cli(
        "create-capacity-provider",
        "--capacity-provider-name",
        name,
        "--vpc-config",
        json.dumps(VPC),
        "--permissions-config",
        json.dumps(PERMISSIONS),
    )
    assert json.loads(created.stdout)["CapacityProvider"]["State"] == "Pending"
    listed = json.loads(server.aws_cli("list-capacity-providers").stdout)["CapacityProviders"]
    assert name in {p["CapacityProviderArn"].rsplit(":", 1)[1] for p in listed}
    missing = server.aws_cli("get-capacity-provider", "--capacity-provider-name", unique("none"), check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
