"""An environment started from a spare: the spare's sandbox is specialised (code, memory, label), the
runtime is answered the function's environment and handler, and output from before the hand-over stays
out of the function's log (a fake sandbox plays the zygote)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

from lambdad.environment import EnvironmentState, ExecutionEnvironment, FunctionImage, Spare
from lambdad.observability.logs import LogStore
from lambdad.runtime_api import Invocation
from lambdad.runtimes import Interpreter
from lambdad.sandbox import NetworkMode
from lambdad.sandbox.fake import FakeSandbox, FakeSandboxFactory


async def request(sb: FakeSandbox, method: str, path: str, body: bytes = b"") -> tuple[dict[str, str], bytes]:
    reader, writer = await sb.open_runtime_api()
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
    data = await reader.readexactly(int(headers.get("Content-Length", "0")))
    writer.close()
    return {k.lower(): v for k, v in headers.items()}, data


async def zygote(sb: FakeSandbox) -> int:
    sb.write_output("zygote warming up\n")
    _, answer = await request(sb, "GET", "/2018-06-01/runtime/lambdad/specialize")
    handed = json.loads(answer)
    sb.write_output(f"init of {handed['env']['AWS_LAMBDA_FUNCTION_NAME']} with {handed['handler']}\n")
    headers, event = await request(sb, "GET", "/2018-06-01/runtime/invocation/next")
    request_id = headers["lambda-runtime-aws-request-id"]
    await request(sb, "POST", f"/2018-06-01/runtime/invocation/{request_id}/response", event)
    await asyncio.sleep(3600)
    return 0


def image(code: Path) -> FunctionImage:
    return FunctionImage(
        function_name="handed",
        version="$LATEST",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:handed",
        region="us-east-1",
        runtime="python3.12",
        handler="app.main",
        memory_mb=384,
        timeout_s=3,
        ephemeral_mb=512,
        code_dir=code,
        runtime_dir=Path("/rt"),
        interpreter=Interpreter("python3.12", Path("/usr/bin/python3"), "3.12.0"),
        environment={"MY_VAR": "mine"},
        network=NetworkMode.NONE,
    )


def test_an_environment_started_from_a_spare_is_the_functions(tmp_path: Path) -> None:
    async def scenario() -> None:
        factory = FakeSandboxFactory(program=zygote)
        img = image(tmp_path / "code")
        assert img.spare_key is not None
        spare = Spare(img.spare_key, factory)
        await spare.start()
        assert spare.ready
        sandbox = factory.created[0]
        assert sandbox.spec.code_slot == "/var/task" and sandbox.spec.memory_mb > img.memory_mb
        await asyncio.sleep(0.05)  # the zygote's early output arrives (and is discarded)
        logs = LogStore(tmp_path / "logs")
        environment = ExecutionEnvironment(img, factory, logs)
        assert spare.fits(environment.function_environment())
        await environment.start(spare)
        assert environment.state is EnvironmentState.READY and not spare.ready
        assert sandbox.specialized == (img.code_dir, 384)
        assert sandbox.id.startswith("fn-handed-")
        deadline = int(time.time() * 1000) + 3000
        outcome = await environment.invoke(Invocation("req-1", b'{"x": 1}', deadline, img.function_arn))
        assert outcome.payload == b'{"x": 1}' and not outcome.function_error
        assert outcome.init_duration_ms is not None
        assert "init of handed with app.main" in outcome.log_text
        assert "zygote" not in outcome.log_text
        await environment.shutdown()
        assert sandbox.destroyed
        await spare.destroy()  # a taken spare is the environment's: nothing happens
        await factory.close()

    asyncio.run(scenario())


def test_a_function_changing_interpreter_start_variables_does_not_fit(tmp_path: Path) -> None:
    async def scenario() -> None:
        factory = FakeSandboxFactory(program=zygote)
        img = image(tmp_path / "code")
        assert img.spare_key is not None
        spare = Spare(img.spare_key, factory)
        own = ExecutionEnvironment(img, factory, LogStore(tmp_path / "logs"))
        assert spare.fits(own.function_environment())
        for variable in ("PYTHONHASHSEED", "LANG", "LC_ALL", "LD_PRELOAD"):
            changed = dataclasses.replace(img, environment={variable: "x"})
            other = ExecutionEnvironment(changed, factory, LogStore(tmp_path / "logs"))
            assert not spare.fits(other.function_environment()), variable
        await factory.close()

    asyncio.run(scenario())
