"""Fixtures for the sandbox tests: factories for each implementation and a code directory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.sandbox import SandboxUnavailable
from lambdad.sandbox.namespaces import NamespaceSandboxFactory
from tests.sandbox.support import make_code_dir


@pytest.fixture(scope="module")
def ns_factory() -> Iterator[NamespaceSandboxFactory]:
    """The isolated factory (shared by a module's tests); skips where the machine cannot."""
    try:
        factory = NamespaceSandboxFactory()
    except SandboxUnavailable as exc:
        pytest.skip(f"isolated sandboxes are unavailable here: {exc}")
    try:
        yield factory
    finally:
        asyncio.run(factory.close())


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    return make_code_dir(tmp_path / "code")
