"""The execution role's credentials inside an environment: issued once when it is made (a spare only when
it is specialised for a function), for a session named after the function; an environment is retired
before they expire and the pool makes a new one, with new credentials. A fake sandbox plays the runtime
(it answers each invocation with the AWS_* variables it was started with, as a function printing them
would); ``Sts`` stands in for the IAM store's STS service, which issues role sessions."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lambdad.environment import (
    EnvironmentState,
    ExecutionEnvironment,
    FunctionImage,
    NoRoleCredentials,
    SessionRoleCredentials,
    Spare,
)
from lambdad.environment.credentials import EXPIRY_MARGIN_S
from lambdad.invocation.pool import EnvironmentPool, environment_maker
from lambdad.observability.logs import LogStore
from lambdad.runtime_api import Invocation
from lambdad.runtimes import Interpreter
from lambdad.runtimes.environment import PLACEHOLDER_CREDENTIALS
from lambdad.sandbox import NetworkMode
from lambdad.sandbox.fake import FakeSandbox, FakeSandboxFactory
from tests.environment.test_spare_handover import request

ROLE = "arn:aws:iam::000000000000:role/reader"
NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class Sts:
    """Issues a fresh role session per call, lasting ``lasts`` (the STS side of the IAM store)."""

    def __init__(self, lasts: timedelta = timedelta(hours=12)) -> None:
        self.lasts = lasts
        self.issued: list[tuple[str, str, int, tuple[str, str, str]]] = []

    def issue_role_session(
        self, role_arn: str, session_name: str, duration_s: int
    ) -> tuple[str, str, str, datetime]:
        keys = ("ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30), secrets.token_urlsafe(60))
        self.issued.append((role_arn, session_name, duration_s, keys))
        return (*keys, datetime.now(UTC) + self.lasts)


async def runtime(sb: FakeSandbox) -> int:
    """A runtime whose function answers the AWS_* variables its process was started with."""
    await serve_with(sb, sb.env)
    return 0


async def serve_with(sb: FakeSandbox, env: dict[str, str]) -> None:
    while True:
        headers, _ = await request(sb, "GET", "/2018-06-01/runtime/invocation/next")
        answer = json.dumps({name: env.get(name) for name in NAMES}).encode()
        request_id = headers["lambda-runtime-aws-request-id"]
        await request(sb, "POST", f"/2018-06-01/runtime/invocation/{request_id}/response", answer)


async def zygote(sb: FakeSandbox) -> int:
    """A spare's runtime: the function's environment arrives at specialisation."""
    _, answer = await request(sb, "GET", "/2018-06-01/runtime/lambdad/specialize")
    await serve_with(sb, json.loads(answer)["env"])
    return 0


def image(code: Path, timeout_s: int = 3) -> FunctionImage:
    return FunctionImage(
        function_name="reader",
        version="$LATEST",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:reader",
        region="us-east-1",
        runtime="python3.12",
        handler="app.main",
        memory_mb=128,
        timeout_s=timeout_s,
        ephemeral_mb=512,
        code_dir=code,
        runtime_dir=Path("/rt"),
        interpreter=Interpreter("python3.12", Path("/usr/bin/python3"), "3.12.0"),
        network=NetworkMode.NONE,
        role=ROLE,
    )


async def seen(environment: ExecutionEnvironment) -> dict[str, Any]:
    """The AWS_* variables the function sees in ``environment``."""
    deadline = int(time.time() * 1000) + 3000
    outcome = await environment.invoke(
        Invocation(secrets.token_hex(8), b"{}", deadline, environment.image.function_arn)
    )
    assert not outcome.function_error, outcome.payload
    return dict(json.loads(outcome.payload))


def test_a_cold_environment_gets_its_roles_credentials(tmp_path: Path) -> None:
    async def scenario() -> None:
        sts = Sts()
        factory = FakeSandboxFactory(program=runtime)
        credentials = SessionRoleCredentials(sts.issue_role_session, 43200)
        environment = ExecutionEnvironment(
            image(tmp_path), factory, LogStore(tmp_path / "logs"), credentials=credentials
        )
        await environment.start()
        assert environment.state is EnvironmentState.READY
        [(role, session, duration, keys)] = sts.issued
        assert (role, session, duration) == (ROLE, "reader", 43200)  # the session is named after the function
        assert await seen(environment) == dict(zip(NAMES, keys, strict=True))
        assert await seen(environment) == dict(zip(NAMES, keys, strict=True))  # warm: the same session
        assert len(sts.issued) == 1
        await environment.shutdown()
        logs = [path.read_bytes() for path in (tmp_path / "logs").rglob("*") if path.is_file()]
        assert logs and not any(keys[1].encode() in log or keys[2].encode() in log for log in logs)
        await factory.close()

    asyncio.run(scenario())


def test_without_identities_the_placeholders_stay(tmp_path: Path) -> None:
    async def scenario() -> None:
        factory = FakeSandboxFactory(program=runtime)
        environment = ExecutionEnvironment(
            image(tmp_path), factory, LogStore(tmp_path / "logs"), credentials=NoRoleCredentials()
        )
        await environment.start()
        assert await seen(environment) == dict(zip(NAMES, PLACEHOLDER_CREDENTIALS, strict=True))
        await environment.shutdown()
        await factory.close()

    asyncio.run(scenario())


def test_a_spare_gets_credentials_when_specialised_not_before(tmp_path: Path) -> None:
    async def scenario() -> None:
        sts = Sts()
        factory = FakeSandboxFactory(program=zygote)
        img = image(tmp_path)
        assert img.spare_key is not None
        spare = Spare(img.spare_key, factory)
        await spare.start()
        assert spare.ready and not sts.issued
        spare_env = factory.created[0].spec.env  # what the spare's sandbox was started with
        assert tuple(spare_env[name] for name in NAMES) == PLACEHOLDER_CREDENTIALS
        credentials = SessionRoleCredentials(sts.issue_role_session, 43200)
        environment = ExecutionEnvironment(img, factory, LogStore(tmp_path / "logs"), credentials=credentials)
        await environment.start(spare)
        [(_, session, _, keys)] = sts.issued
        assert session == "reader"
        assert await seen(environment) == dict(zip(NAMES, keys, strict=True))
        await environment.shutdown()
        await factory.close()

    asyncio.run(scenario())


def test_an_environment_past_its_credentials_lifetime_is_replaced(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Sessions that end one function timeout plus the margin plus 1.5 s from now: an environment
        # is retired 1.5 s after it starts, before its credentials could run out under an invocation.
        sts = Sts(lasts=timedelta(seconds=1 + EXPIRY_MARGIN_S + 1.5))
        factory = FakeSandboxFactory(program=runtime)
        credentials = SessionRoleCredentials(sts.issue_role_session, 900)
        make = environment_maker(factory, LogStore(tmp_path / "logs"), credentials=credentials)
        pool = EnvironmentPool(make, idle_timeout_s=300)
        img = image(tmp_path, timeout_s=1)
        first = await pool.acquire(img)
        first_keys = await seen(first)
        pool.release(first)
        assert await pool.acquire(img) is first  # warm while its credentials have time left
        pool.release(first)
        await asyncio.sleep(2)
        assert first.retired and not first.reusable
        second = await pool.acquire(img)
        assert second is not first and len(sts.issued) == 2
        assert await seen(second) != first_keys
        await pool.settle()
        assert first.state is EnvironmentState.DEAD
        pool.release(second)
        await pool.close()
        await factory.close()

    asyncio.run(scenario())


def test_an_environment_is_retired_at_its_maximum_age_even_idle(tmp_path: Path) -> None:
    async def scenario() -> None:
        factory = FakeSandboxFactory(program=runtime)
        make = environment_maker(factory, LogStore(tmp_path / "logs"), max_age_s=0.5)
        pool = EnvironmentPool(make, idle_timeout_s=300)
        img = image(tmp_path)
        first = await pool.acquire(img)
        pool.release(first)
        assert pool.environments == 1
        await asyncio.sleep(1.6)  # the reaper (every second at most) stops it: no invocation needed
        await pool.settle()
        assert pool.environments == 0 and first.state is EnvironmentState.DEAD
        await pool.close()
        await factory.close()

    asyncio.run(scenario())


def test_an_expiration_in_any_form_the_issuer_gives_is_understood() -> None:
    moment = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    async def scenario() -> None:
        for given in (
            moment,
            "2026-12-06T12:00:00Z",
            moment.isoformat(),
            moment.timestamp(),
            moment.replace(tzinfo=None),
        ):
            credentials = SessionRoleCredentials(
                lambda role, name, seconds, at=given: ("A", "B", "C", at), 900
            )
            issued = await credentials.for_environment(
                "arn:aws:lambda:us-east-1:000000000000:function:f:7", ROLE
            )
            assert issued is not None and issued.expiration == moment, given

    asyncio.run(scenario())
