"""Identities hold on every node of a cluster (``--auth sigv4``, one root key, one identity store in the
shared PostgreSQL): a user and access key made through one node sign requests to another at once, a role
session made on one node works on another, a deleted key is refused everywhere, and an invoke forwarded
to the node with the warm environment is decided there, once, for the caller who signed it (the
forwarding node relays the signed request; it neither authenticates nor authorises it).

Where a function ran is told by its log (see test_cluster_forwarding.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import pytest
from botocore.exceptions import ClientError

from tests.e2e.cluster_support import Cluster, cluster
from tests.e2e.invoke_support import deploy_python, invoke, unique
from tests.e2e.signed_support import ACCOUNT, ROOT_ENV, client, lambda_role, user_keys
from tests.e2e.test_cluster_forwarding import WHERE, node_of, other, wait_heard

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("identities"), "--auth", "sigv4", "--spares", "0") as c:
        for node in ("n1", "n2", "n3"):
            c.add(node, env=dict(ROOT_ENV))
        c.wait_states({"n1": "live", "n2": "live", "n3": "live"})
        yield c


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_key_made_on_one_node_signs_on_another_at_once_and_its_deletion_holds_everywhere(
    nodes: Cluster,
) -> None:
    name = unique("everywhere")
    iam = client(nodes["n1"], "iam")
    keys = user_keys(iam, name, {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"})
    # At once, on another node: no cache to wait for.
    caller = client(nodes["n2"], "sts", keys).get_caller_identity()
    assert caller["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    assert "Functions" in client(nodes["n3"], "lambda", keys).list_functions()
    with pytest.raises(ClientError) as denied:
        client(nodes["n3"], "lambda", keys).get_account_settings()
    assert error_code(denied) == "AccessDeniedException"
    assert f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized" in str(denied.value)

    iam.delete_access_key(UserName=name, AccessKeyId=keys["aws_access_key_id"])
    for node in ("n1", "n2", "n3"):
        with pytest.raises(ClientError) as refused:
            client(nodes[node], "lambda", keys).list_functions()
        assert error_code(refused) == "UnrecognizedClientException", node
        with pytest.raises(ClientError) as refused:
            client(nodes[node], "sts", keys).get_caller_identity()
        assert error_code(refused) == "InvalidClientTokenId", node


def test_a_role_session_from_one_node_works_on_another(nodes: Cluster) -> None:
    iam = client(nodes["n1"], "iam")
    role = unique("assumable")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="list",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}],
            }
        ),
    )
    credentials = client(nodes["n2"], "sts").assume_role(RoleArn=arn, RoleSessionName="travels")[
        "Credentials"
    ]
    session = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    caller = client(nodes["n3"], "sts", session).get_caller_identity()
    assert caller["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/travels"
    assert "Functions" in client(nodes["n3"], "lambda", session).list_functions()
    with pytest.raises(ClientError) as denied:
        client(nodes["n1"], "lambda", session).get_account_settings()
    assert f"assumed-role/{role}/travels is not authorized" in str(denied.value)


def test_a_forwarded_invoke_is_decided_once_for_its_signer_where_it_runs(nodes: Cluster) -> None:
    iam = client(nodes["n1"], "iam")
    name = unique("forwarded")
    root = client(nodes["n1"], "lambda")
    arn = deploy_python(root, name, WHERE, Role=lambda_role(iam, unique("fwd-role")))["FunctionArn"]
    allowed = user_keys(
        iam, unique("invoker"), {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}
    )
    denied_name = unique("outsider")
    denied = user_keys(iam, denied_name)
    # Warm on one node, then called through another: the warm node runs it, for the signer.
    response, where = invoke(client(nodes["n1"], "lambda", allowed), name, {})
    assert response["StatusCode"] == 200, where
    home = node_of(nodes, name, where["environment"])
    wait_heard(nodes, home)
    through = other(nodes, home)
    response, again = invoke(client(nodes[through], "lambda", allowed), name, {})
    assert response["StatusCode"] == 200 and again == where  # forwarded to the warm environment
    with pytest.raises(ClientError) as refused:
        invoke(client(nodes[through], "lambda", denied), name, {})
    assert error_code(refused) == "AccessDeniedException"
    assert refused.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{denied_name} is not authorized to perform: "
        f"lambda:InvokeFunction on resource: {arn} because no identity-based policy allows the "
        "lambda:InvokeFunction action"
    )
    # An AWS_IAM function URL through the node without the environment: verified where it runs.
    url = root.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    url_id = url.split("//", 1)[1].split(".", 1)[0]
    root.add_permission(
        FunctionName=name,
        StatementId="invoker-url",
        Action="lambda:InvokeFunctionUrl",
        Principal=f"arn:aws:iam::{ACCOUNT}:root",
        FunctionUrlAuthType="AWS_IAM",
    )
    for keys, status in ((allowed, 403), (dict(ROOT_KEYS_FOR_URL), 207)):
        assert url_request(nodes[through].port, url_id, keys).status_code == status


ROOT_KEYS_FOR_URL = {
    "aws_access_key_id": ROOT_ENV["LAMBDAD_ROOT_ACCESS_KEY_ID"],
    "aws_secret_access_key": ROOT_ENV["LAMBDAD_ROOT_SECRET_ACCESS_KEY"],
}


def url_request(port: int, url_id: str, keys: dict[str, str]) -> httpx.Response:
    """A GET of a function URL by path form, signed by botocore."""
    url = f"http://127.0.0.1:{port}/_lambdad/urls/{url_id}/"
    request = botocore.awsrequest.AWSRequest(method="GET", url=url)
    credentials = botocore.credentials.Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"])
    botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
    return httpx.get(url, headers=dict(request.headers.items()), timeout=60)
