"""The program of a spare Python runtime (a "zygote"), run as ``python3.X -S -c <this file's text>``.

It imports AWS's runtime client (``awslambdaric``) and everything it imports, then long-polls lambdad's
private ``GET /2018-06-01/runtime/lambdad/specialize`` for the function it is to become. The answer is
``{"env": {...}, "handler": "..."}``: the environment replaces the process's own, the working directory
becomes the function's code (attached at /var/task meanwhile), and ``awslambdaric`` is started exactly as
``python3.X -S -m awslambdaric <handler>`` would start it. Its own modules are imported afresh (a few ms:
they read the function's environment at import time); the standard library they use stays imported, which
is where the time goes.

Runs on every interpreter lambdad supports (3.9+), with nothing but the standard library and the runtime
directory on PYTHONPATH. Whatever it prints before the answer is discarded by lambdad.
"""

import contextlib
import http.client
import importlib
import json
import os
import runpy
import sys
import time

SPECIALIZE_PATH = "/2018-06-01/runtime/lambdad/specialize"


def preload() -> None:
    """Import the runtime client and its dependencies (the ~60 ms a cold start no longer pays)."""
    for name in ("awslambdaric.__main__", "awslambdaric.bootstrap", "awslambdaric.lambda_context"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def wait_for_function() -> tuple[dict[str, str], str]:
    """Block until lambdad hands over a function: its environment and handler."""
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
    connection = http.client.HTTPConnection(host, int(port))
    try:
        connection.request("GET", SPECIALIZE_PATH)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"lambdad refused the specialization: {response.status} {body[:200]!r}")
    finally:
        connection.close()
    answer = json.loads(body)
    return dict(answer["env"]), str(answer["handler"])


def become(env: dict[str, str], handler: str) -> None:
    """Turn this process into ``python -S -m awslambdaric <handler>`` for the function."""
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    os.chdir(env.get("LAMBDA_TASK_ROOT", "/var/task"))  # the code is a new mount: re-enter it
    if sys.path and sys.path[0] == "":
        sys.path[0] = os.getcwd()  # what -m puts first
    for name in [n for n in sys.modules if n == "awslambdaric" or n.startswith("awslambdaric.")]:
        del sys.modules[name]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    sys.argv = [sys.argv[0], handler]
    runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)


def main() -> None:
    preload()
    try:
        env, handler = wait_for_function()
    except (OSError, http.client.HTTPException):
        sys.exit(0)  # the spare was discarded
    become(env, handler)


if __name__ == "__main__":
    main()
