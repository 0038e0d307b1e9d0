"""Several nodes answer as one region: a function made through one node runs on every node (each fetches
its code once from the cluster's store), changes reach every node's caches and environments, and a delete
stops the function everywhere."""

from __future__ import annotations

import io
import time
import urllib.request
import zipfile
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import ACTIVE_WAIT, deploy_python, invoke, unique, wait_updated
from tests.support import make_zip

pytestmark = pytest.mark.timeout(300)

VERSIONED = """
import os
def handler(event, context):
    layer = "/opt/layer.txt"
    return {"version": "{V}", "layer": open(layer).read() if os.path.exists(layer) else None}
"""


def warm_environments(c: Cluster, node_id: str) -> int:
    return {node["NodeId"]: node["WarmEnvironments"] for node in c.view(node_id)}[node_id]


def wait_for(condition: Any, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with cluster(tmp_path_factory.mktemp("region"), "--spares", "0", nodes=3) as c:
        yield c


def test_a_function_made_through_one_node_runs_on_every_node_and_an_update_reaches_all(
    region: Cluster,
) -> None:
    c = region
    name = unique("everywhere")
    layer = (
        c["n2"]
        .client()
        .publish_layer_version(
            LayerName=unique("shared"), Content={"ZipFile": make_zip({"layer.txt": "from n2"})}
        )
    )
    deploy_python(c["n1"].client(), name, VERSIONED.replace("{V}", "1"), Layers=[layer["LayerVersionArn"]])
    for node in ("n1", "n2", "n3"):
        client = c[node].client()
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
        response, payload = invoke(client, name, {})
        assert response["StatusCode"] == 200 and "FunctionError" not in response, payload
        assert payload == {"version": "1", "layer": "from n2"}
        wait_for(lambda node=node: warm_environments(c, node) >= 1, what=f"a warm environment on {node}")

    # An update through n2: every node's old environments drain and every node runs the new code.
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("handler.py", VERSIONED.replace("{V}", "2"))
    c["n2"].client().update_function_code(FunctionName=name, ZipFile=zipped.getvalue())
    wait_updated(c["n3"].client(), name)
    for node in ("n1", "n2", "n3"):
        wait_for(lambda node=node: warm_environments(c, node) == 0, what=f"{node}'s old environment to drain")
        _, payload = invoke(c[node].client(), name, {})
        assert payload == {"version": "2", "layer": "from n2"}, node

    # GetFunction through n3 gives a link every node serves (the key that signs it is the cluster's).
    location = c["n3"].client().get_function(FunctionName=name)["Code"]["Location"]
    for node in ("n1", "n2"):
        link = location.replace(c["n3"].endpoint, c[node].endpoint)
        with urllib.request.urlopen(link, timeout=10) as answer:
            assert zipfile.ZipFile(io.BytesIO(answer.read())).read("handler.py").decode().count('"2"') == 1

    # A delete through n3 stops it everywhere.
    c["n3"].client().delete_function(FunctionName=name)
    for node in ("n1", "n2", "n3"):
        with pytest.raises(ClientError) as refused:
            c[node].client().invoke(FunctionName=name, Payload=b"{}")
        assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
        wait_for(lambda node=node: warm_environments(c, node) == 0, what=f"{node} to stop the function")


def test_function_url_changes_reach_every_node(region: Cluster) -> None:
    c = region
    name = unique("url-everywhere")
    deploy_python(
        c["n1"].client(), name, "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hi'}\n"
    )
    config = c["n1"].client().create_function_url_config(FunctionName=name, AuthType="NONE")
    c["n1"].client().add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    url_id = config["FunctionUrl"].split("//", 1)[1].split(".", 1)[0]
    for node in ("n1", "n2", "n3"):
        answer = httpx.get(f"{c[node].endpoint}/_lambdad/urls/{url_id}/", timeout=60)
        assert (answer.status_code, answer.text) == (200, "hi"), node
    # Made IAM-only through n2: the other nodes, which had the URL cached, refuse unsigned calls now.
    c["n2"].client().update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    for node in ("n1", "n3"):
        wait_for(
            lambda node=node: (
                httpx.get(f"{c[node].endpoint}/_lambdad/urls/{url_id}/", timeout=60).status_code == 403
            ),
            timeout=5,
            what=f"{node} to refuse the unsigned call",
        )


def test_every_node_lists_and_reads_the_same(region: Cluster) -> None:
    c = region
    name = unique("same")
    deploy_python(c["n3"].client(), name, "def handler(event, context):\n    return 1\n")
    c["n3"].client().put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    answers = []
    for node in ("n1", "n2", "n3"):
        client = c[node].client()
        configuration = client.get_function_configuration(FunctionName=name)
        configuration.pop("ResponseMetadata")
        listed = [f["FunctionName"] for f in client.list_functions()["Functions"]]
        assert name in listed
        answers.append(
            (
                configuration,
                client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"],
            )
        )
    assert answers[0] == answers[1] == answers[2]
