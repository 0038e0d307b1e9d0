"""A function's /proc/self/mountinfo does not tell where lambdad keeps its code, runtime client or
code slots on the host: a cold start, a cold start from a spare, and a function with a layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.invoke_support import (
    RUNTIMES_DIR,
    deploy_python,
    eventually,
    health,
    invoke,
    start_server,
    unique,
)
from tests.support import ROLE, Server, make_zip

pytestmark = pytest.mark.timeout(240)

SHOW = "def handler(event, context):\n    return open('/proc/self/mountinfo').read()\n"


def _mountinfo(server: Server, name: str) -> str:
    response, mountinfo = invoke(server.client(read_timeout=60), name, {})
    assert "FunctionError" not in response, mountinfo
    assert isinstance(mountinfo, str)
    return mountinfo


def _leaks(mountinfo: str, server: Server) -> list[str]:
    host_paths = [
        str(server.data_dir.resolve()),
        str(server.data_dir),
        RUNTIMES_DIR,
        "/run/lambdad",
        "lambdad",
    ]
    return [path for path in host_paths if path in mountinfo]


def test_mountinfo_shows_no_lambdad_path(tmp_path: Path):
    server = start_server(tmp_path)
    try:
        client = server.client(read_timeout=60)
        cold = unique("paths")
        deploy_python(client, cold, SHOW)
        first = _mountinfo(server, cold)
        assert _leaks(first, server) == [], first
        task = next(line for line in first.splitlines() if " /var/task " in line)
        assert task.split()[3] == "/", task

        # A second function's cold start takes the spare the first one left warming.
        eventually(lambda: health(server)["spares"] >= 1 or None)
        spared = unique("paths")
        deploy_python(client, spared, SHOW)
        from_spare = _mountinfo(server, spared)
        # The spare's slot (a tmpfs directory) with the code propagated onto it: two mounts.
        assert len([line for line in from_spare.splitlines() if " /var/task " in line]) == 2, from_spare
        assert _leaks(from_spare, server) == [], from_spare

        layer = client.publish_layer_version(
            LayerName=unique("layer"), Content={"ZipFile": make_zip({"python/shared.py": "X = 1\n"})}
        )["LayerVersionArn"]
        layered = unique("paths")
        deploy_python(client, layered, SHOW, Layers=[layer], Role=ROLE)
        with_layer = _mountinfo(server, layered)
        assert " /opt " in with_layer
        assert _leaks(with_layer, server) == [], with_layer
    finally:
        server.stop(timeout=60)
