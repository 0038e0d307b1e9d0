"""Environments are recycled as AWS recycles them, so that the role credentials they were given never run
out under a function: past ``LAMBDAD_ENVIRONMENT_MAX_AGE`` an environment takes no more invocations and
the next one starts a new environment (with credentials of its own), idle or not. Without identities the
function sees lambdad's placeholder credentials, as before."""

from __future__ import annotations

import time
from typing import Any

from lambdad.runtimes.environment import PLACEHOLDER_CREDENTIALS
from tests.e2e.invoke_support import deploy_python, health, invoke, unique
from tests.support import Server

SHOW = """
import os, uuid

INSTANCE = uuid.uuid4().hex  # one per execution environment

def handler(event, context):
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return {"instance": INSTANCE, "credentials": [os.environ.get(name) for name in names]}
"""


def test_an_environment_past_its_lifetime_is_replaced(tmp_path: Any) -> None:
    server = Server(
        tmp_path / "data", extra_args=["--spares", "1"], env={"LAMBDAD_ENVIRONMENT_MAX_AGE": "3"}, auth=True
    )
    server.start(timeout=60)
    try:
        client = server.client()
        name = unique("aged")
        deploy_python(client, name, SHOW)
        first = invoke(client, name)[1]
        # A session of its execution role (ROLE exists: the server runs with auth sigv4).
        assert first["credentials"][0].startswith("ASIA")
        assert first["credentials"] != list(PLACEHOLDER_CREDENTIALS)
        assert invoke(client, name)[1]["instance"] == first["instance"]  # warm within its lifetime
        time.sleep(4)
        assert health(server)["environments"] == 0  # retired while idle, before any invocation
        second = invoke(client, name)[1]
        assert second["instance"] != first["instance"]
        assert second["credentials"][0].startswith("ASIA")
        assert second["credentials"] != first["credentials"]  # each environment, a session of its own
        assert invoke(client, name)[1]["instance"] == second["instance"]
    finally:
        server.stop(timeout=60)
