"""Capacity providers in a cluster: the providers' state is the cluster's (made through one node, seen
by all), a node joins a provider's group with --capacity-provider, and a Managed Instances version runs,
and is kept warm, on the group's nodes only."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import unique
from tests.support import create_function, make_zip

pytestmark = pytest.mark.timeout(300)

VPC = {"SubnetIds": ["subnet-0a1b2c"], "SecurityGroupIds": ["sg-0a1b2c"]}
PERMISSIONS = {"CapacityProviderOperatorRoleArn": "arn:aws:iam::000000000000:role/operator"}


def wait_for(condition: Any, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def warm(c: Cluster, node_id: str) -> int:
    return {node["NodeId"]: node["WarmEnvironments"] for node in c.view(node_id)}[node_id]


@pytest.fixture(scope="module")
def fleet_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """n1: a node of no provider; n2: a node of capacity provider "fleet"."""
    with cluster(tmp_path_factory.mktemp("capacity"), "--spares", "0", nodes=1) as c:
        c.add("n2", "--capacity-provider", "fleet")
        c.wait_states({"n1": "live", "n2": "live"})
        yield c


def test_a_managed_instances_version_runs_on_its_providers_nodes(fleet_cluster: Cluster) -> None:
    c = fleet_cluster
    n1, n2 = c["n1"].client(), c["n2"].client()
    assert {node["NodeId"]: node["CapacityProvider"] for node in c.view("n1")} == {"n1": None, "n2": "fleet"}

    created = n1.create_capacity_provider(
        CapacityProviderName="fleet", VpcConfig=VPC, PermissionsConfig=PERMISSIONS
    )
    arn = created["CapacityProvider"]["CapacityProviderArn"]
    # Settled by the node that took the create; every node reads the same state.
    wait_for(
        lambda: (
            n2.get_capacity_provider(CapacityProviderName="fleet")["CapacityProvider"]["State"] == "Active"
        ),
        what="the provider to be Active as n2 sees it",
    )

    name = unique("mi")
    source = (
        "import os\n\ndef handler(event, context):\n    return os.environ['AWS_LAMBDA_FUNCTION_VERSION']\n"
    )
    create_function(
        n1,
        name,
        Code={"ZipFile": make_zip({"handler.py": source})},
        CapacityProviderConfig={"LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": arn}},
    )
    n1.publish_version(FunctionName=name)
    listed = n2.list_function_versions_by_capacity_provider(CapacityProviderName="fleet")["FunctionVersions"]
    assert [v["FunctionArn"].rsplit(":", 1)[1] for v in listed] == ["$LATEST", "1"]

    # n2, of the group, runs it (its code fetched from the cluster's store).
    response = n2.invoke(FunctionName=name)
    assert response["ExecutedVersion"] == "1"
    assert json.load(response["Payload"]) == "1"
    # n1 is outside the group: it never runs the function, it forwards the invoke to n2.
    for _ in range(3):
        forwarded = n1.invoke(FunctionName=name, Qualifier="1")
        assert forwarded["ExecutedVersion"] == "1" and json.load(forwarded["Payload"]) == "1"

    # The minimum is kept warm on the group's nodes, never on others. (The counts come with heartbeats:
    # wait until n2's shows the environment of the invoke above.)
    wait_for(lambda: warm(c, "n2") == 1, what="n2's heartbeat to count its warm environment")
    before = {node: warm(c, node) for node in ("n1", "n2")}
    n1.put_function_scaling_config(
        FunctionName=name, Qualifier="1", FunctionScalingConfig={"MinExecutionEnvironments": 2}
    )
    wait_for(lambda: warm(c, "n2") == before["n2"] + 2, what="n2 to keep the minimum warm")
    assert warm(c, "n1") == before["n1"]
    assert n2.get_function_scaling_config(FunctionName=name, Qualifier="1")[
        "AppliedFunctionScalingConfig"
    ] == {"MinExecutionEnvironments": 2}

    # In use (through any node) until the function goes; then Deleting, then gone for every node.
    with pytest.raises(ClientError) as in_use:
        n2.delete_capacity_provider(CapacityProviderName="fleet")
    assert in_use.value.response["Error"]["Code"] == "ResourceConflictException"
    n2.delete_function(FunctionName=name)
    wait_for(lambda: warm(c, "n2") == 0, what="n2's environments of the deleted function to stop")
    assert (
        n1.delete_capacity_provider(CapacityProviderName="fleet")["CapacityProvider"]["State"] == "Deleting"
    )
    wait_for(
        lambda: not n2.list_capacity_providers()["CapacityProviders"], what="the provider to be gone for n2"
    )


def test_a_provider_a_dead_node_left_pending_is_settled_by_a_survivor(fleet_cluster: Cluster) -> None:
    c = fleet_cluster
    # As a node that died between answering CreateCapacityProvider and settling it leaves it.
    name = unique("orphan")
    config = json.dumps({"VpcConfig": VPC, "PermissionsConfig": PERMISSIONS})
    with psycopg.connect(c.database_url.replace("postgresql+psycopg://", "postgresql://")) as db:
        db.execute(
            "INSERT INTO capacity_providers (account, region, name, state, config, last_modified) "
            "VALUES ('000000000000', 'us-east-1', %s, 'Pending', %s, now())",
            (name, config),
        )
    n1 = c["n1"].client()
    assert n1.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]["State"] == "Pending"
    c.kill("n2")
    wait_for(
        lambda: n1.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]["State"] == "Active",
        timeout=60,
        what="n1 to settle the provider once n2 is dead",
    )
