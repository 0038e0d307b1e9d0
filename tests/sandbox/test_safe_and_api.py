"""The safety wrapper and the spec's validation."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lambdad.sandbox import Mount, Sandbox, SandboxError, SandboxSpec, cpu_quota_us
from lambdad.sandbox.fake import FakeSandbox, FakeSandboxFactory
from lambdad.sandbox.safe import SafeFactory

pytestmark = pytest.mark.timeout(10)


class SlowFactory(FakeSandboxFactory):
    """A fake whose creation takes ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def create(self, spec: SandboxSpec) -> Sandbox:
        await asyncio.sleep(self.delay)
        return await super().create(spec)


def spec() -> SandboxSpec:
    return SandboxSpec(argv=["/var/runtime/bootstrap"])


def test_create_timeout_raises_and_aborts_the_stuck_create() -> None:
    async def scenario() -> None:
        inner = SlowFactory(delay=5)
        factory = SafeFactory(inner, create_timeout=0.05)
        with pytest.raises(SandboxError, match="took over"):
            await factory.create(spec())
        assert inner.created == [] and factory.live == 0
        await factory.close()

    asyncio.run(scenario())


def test_async_with_destroys_the_sandbox() -> None:
    async def scenario() -> None:
        inner = FakeSandboxFactory()
        factory = SafeFactory(inner)
        async with await factory.create(spec()) as sandbox:
            assert factory.live == 1
        assert factory.live == 0
        fake = inner.created[0]
        assert isinstance(fake, FakeSandbox) and fake.destroyed
        os.close(sandbox.output)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "overrides",
    [
        {"argv": []},
        {"workdir": "var/task"},
        {"label": "has space"},
        {"memory_mb": 0},
        {"runtime_api_port": 70000},
        {"env": {"A=B": "x"}},
    ],
)
def test_invalid_specs_are_rejected(overrides: dict[str, object]) -> None:
    fields: dict[str, object] = {"argv": ["/bin/true"], **overrides}
    with pytest.raises(ValueError):
        SandboxSpec(**fields)  # type: ignore[arg-type]


def test_mount_targets_must_be_absolute_without_dotdot() -> None:
    with pytest.raises(ValueError):
        Mount(Path("/code"), "var/task")
    with pytest.raises(ValueError):
        Mount(Path("/code"), "/var/../etc")


def test_cpu_quota_follows_aws_memory_ratio() -> None:
    assert cpu_quota_us(1769, 100_000) == 100_000  # one vCPU
    assert cpu_quota_us(3538, 100_000) == 200_000
    assert cpu_quota_us(128, 100_000) == 7236
    assert cpu_quota_us(1, 20_000) == 1000  # the kernel's minimum
