"""The capacity provider service's settling and the eligibility rule the data plane and router use."""

from __future__ import annotations

from pathlib import Path

from lambdad.models import FunctionVersion
from lambdad.services.capacity_providers import (
    CapacityProviderService,
    CapacityProviderState,
    max_concurrency,
    may_run_on,
    provider_of,
)
from lambdad.services.changes import FunctionChanges
from lambdad.store import Database
from lambdad.store import capacity_providers as records
from tests.services.test_functions import SCOPE, Parts, create_params

ARN = "arn:aws:lambda:us-east-1:000000000000:capacity-provider:fleet"
PARAMS = {
    "CapacityProviderName": "fleet",
    "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": []},
    "PermissionsConfig": {"CapacityProviderOperatorRoleArn": "arn:aws:iam::000000000000:role/op"},
}


def managed_version(tmp_path: Path, **config: int) -> FunctionVersion:
    parts = Parts(tmp_path)
    try:
        providers = parts.service.capacity_providers
        providers.create(SCOPE, PARAMS)
        providers.close()  # waits for the settle: Active
        cp = {"LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": ARN, **config}}
        return parts.service.create(SCOPE, create_params("f", CapacityProviderConfig=cp))
    finally:
        parts.close()


def test_versions_run_only_on_their_providers_nodes(tmp_path: Path) -> None:
    version = managed_version(tmp_path, PerExecutionEnvironmentMaxConcurrency=8)
    assert provider_of(version) == "fleet"
    assert may_run_on(version, "fleet")
    assert not may_run_on(version, "")
    assert not may_run_on(version, "other")
    assert max_concurrency(version) == 8
    plain = version.evolve(extra={})
    assert provider_of(plain) is None
    assert may_run_on(plain, "")
    assert not may_run_on(plain, "fleet")
    assert max_concurrency(plain) == 1


def test_settling_is_shared_by_every_node_and_resumed_at_start(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.migrate()
    # Two services on one database: two nodes of a cluster.
    first = CapacityProviderService(database, FunctionChanges())
    second = CapacityProviderService(database, FunctionChanges())
    created = first.create(SCOPE, PARAMS)
    assert created.state is CapacityProviderState.PENDING
    second.settle(SCOPE, "fleet", CapacityProviderState.PENDING)
    first.close()
    assert second.get(SCOPE, "fleet").state is CapacityProviderState.ACTIVE
    # A Deleting provider left behind by a stopped node goes once another starts.
    with database.write() as connection:
        records.set_state(connection, SCOPE, "fleet", "Deleting", only_from="Active")
    third = CapacityProviderService(database, FunctionChanges())
    assert third.recover() == 1
    third.close()
    with database.read() as connection:
        assert records.get_provider(connection, SCOPE, "fleet") is None
    database.dispose()
