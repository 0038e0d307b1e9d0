"""The host network (tag ``lambdad:network=host``) reaches every service on the host's loopback and can
listen on host ports: only an operator who started the server with ``--allow-host-network`` allows it.
Without it, tags asking for it are refused, and a function tagged on an earlier run is refused at
invoke, not run on another network."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.invoke_support import deploy_python, invoke, server_fixture, start_server, unique
from tests.support import ROLE, Server, make_zip

pytestmark = pytest.mark.e2e

server = server_fixture()

HOST_TAG = {"lambdad:network": "host"}
REFUSED = (
    "Tag lambdad:network=host is not allowed on this server: the host network reaches every service on the "
    "host's loopback, so the operator must start lambdad serve with --allow-host-network "
    "(LAMBDAD_ALLOW_HOST_NETWORK=1) to allow it."
)

# Reaches a listener on the host's loopback: possible on the host network only.
PROBE = """
import socket

def handler(event, context):
    try:
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=2) as connection:
            return connection.recv(16).decode()
    except OSError as error:
        return f"unreachable: {error}"
"""


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A host loopback port that answers ``host`` to whoever connects, and the list of those connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, peer = sock.accept()
            except TimeoutError:
                continue
            with connection:
                accepted.append(peer[0])
                connection.sendall(b"host")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join(5)
    sock.close()


def test_create_function_tagged_host_is_refused_without_the_operators_consent(server: Server) -> None:
    client = server.client()
    name = unique("host-create")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": make_zip()},
            Tags=HOST_TAG,
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Message"] == REFUSED
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=name)


def test_tag_resource_host_is_refused_without_the_operators_consent(server: Server) -> None:
    client = server.client()
    name = unique("host-tag")
    arn = deploy_python(client, name, PROBE)["FunctionArn"]
    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.tag_resource(Resource=arn, Tags=HOST_TAG)
    assert refused.value.response["Error"]["Message"] == REFUSED
    assert client.list_tags(Resource=arn)["Tags"] == {}
    client.tag_resource(Resource=arn, Tags={"lambdad:network": "none"})  # stricter is always allowed


def test_a_function_tagged_host_runs_on_the_host_network_only_where_the_operator_allows_it(
    tmp_path: Path, listener: tuple[int, list[str]]
) -> None:
    port, accepted = listener
    name = unique("host-fn")
    allowed = start_server(tmp_path, "--allow-host-network")
    try:
        client = allowed.client()
        deploy_python(client, name, PROBE, Tags=HOST_TAG)
        response, payload = invoke(client, name, {"port": port})
        assert "FunctionError" not in response, payload
        assert payload == "host"
        assert len(accepted) == 1
    finally:
        allowed.stop(timeout=60)

    # The same data directory on a server whose operator did not allow the host network.
    refusing = Server(allowed.data_dir, port=allowed.port).start(timeout=60)
    try:
        client = refusing.client()
        with pytest.raises(client.exceptions.ResourceConflictException) as refused:
            invoke(client, name, {"port": port})
        message = refused.value.response["Error"]["Message"]
        assert "tagged lambdad:network=host, which this server does not allow" in message
        assert "--allow-host-network" in message
        assert len(accepted) == 1  # the function did not run, on any network
        # What the operator's client can do about it: remove the tag, and the function runs isolated.
        client.untag_resource(
            Resource=client.get_function(FunctionName=name)["Configuration"]["FunctionArn"],
            TagKeys=["lambdad:network"],
        )
        response, payload = invoke(client, name, {"port": port})
        assert "FunctionError" not in response, payload
        assert payload.startswith("unreachable")
        assert len(accepted) == 1
    finally:
        refusing.stop(timeout=60)
