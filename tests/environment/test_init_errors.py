"""An environment whose sandbox cannot start answers an init error that names no host path (the
sandbox's own error, with its mounts and bubblewrap's words, stays in the server log)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from lambdad.environment import ExecutionEnvironment
from lambdad.environment.environment import ENVIRONMENT_FAILED
from lambdad.observability.logs import LogStore
from lambdad.runtime_api import Invocation
from lambdad.sandbox import SandboxError
from lambdad.sandbox.fake import FakeSandboxFactory
from tests.environment.test_spare_handover import image


def test_a_sandbox_failure_is_answered_without_its_host_paths(tmp_path: Path) -> None:
    secret = str(tmp_path / "data" / "tasks" / "0123abcd")

    async def scenario() -> None:
        factory = FakeSandboxFactory(fail_with=SandboxError(f"bwrap: Can't find source path {secret}"))
        img = image(tmp_path / "code")
        environment = ExecutionEnvironment(img, factory, LogStore(tmp_path / "logs"))
        await environment.start()
        deadline = int(time.time() * 1000) + 3000
        outcome = await environment.invoke(Invocation("req-1", b"{}", deadline, img.function_arn))
        assert outcome.function_error
        answer = json.loads(outcome.payload)
        assert answer == {"errorType": "Runtime.Unknown", "errorMessage": ENVIRONMENT_FAILED}
        assert str(tmp_path) not in outcome.payload.decode() + outcome.log_text
        await environment.shutdown()
        await factory.close()

    asyncio.run(scenario())
