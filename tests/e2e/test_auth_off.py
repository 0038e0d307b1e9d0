"""Authentication off (``--auth none``, the default on loopback) stays covered end to end: the AWS CLI
basics and what a function may do from its sandbox run again here on a server without authentication,
where every request acts as the default account's root whatever it is signed with, and an execution
role the identity store does not have keeps the default role policy (invoke, read the account's limits).

The tests are those of ``test_aws_cli`` and ``test_function_identity``, collected here with this module's
``server``; the load test of denied calls is left to the signed run.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.invoke_support import unique
from tests.e2e.test_aws_cli import (  # noqa: F401  (collected with this module's server)
    test_cli_manages_a_function_from_create_to_delete,
    test_cli_paginates_list_functions,
)
from tests.e2e.test_function_identity import (  # noqa: F401  (fixtures and tests, run auth-off)
    attacker,
    client,
    test_a_function_can_invoke_other_functions,
    test_a_function_can_read_the_account_limits,
    test_a_function_cannot_create_schedules,
    test_a_function_cannot_read_or_change_other_functions,
    test_the_identity_is_each_environments_own,
    victim,
)
from tests.support import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("lambdad") / "data", auth=False).start(timeout=60)
    yield running
    running.stop(timeout=60)


def test_any_credentials_act_as_the_default_root_and_own_endpoints_are_open(server: Server) -> None:
    stranger = boto3.client(
        "lambda",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="anything",
        aws_secret_access_key="anything",
        config=Config(retries={"max_attempts": 1}),
    )
    name = unique("open")
    assert name not in {f["FunctionName"] for f in stranger.list_functions()["Functions"]}
    with urllib.request.urlopen(f"{server.endpoint}/_lambdad/nodes", timeout=5) as answer:
        assert answer.status == 200
    sts: Any = boto3.client(
        "sts",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="anything",
        aws_secret_access_key="anything",
    )
    assert sts.get_caller_identity()["Arn"] == "arn:aws:iam::000000000000:root"
