"""Turning a stored function version into something an environment can run.

``prepare`` (called by the activator while a function is Pending or InProgress, on a worker thread)
unpacks the code package once per digest and installs the runtime's client once per interpreter;
``image_for`` is then only path arithmetic on the invoke path.

Layers are unpacked like code (once per digest), then merged in the function's order into one
directory per ordered tuple of layer digests (``opt_dir/<sha256 of the tuple>``, hard links into the
unpacked layers, later layers replacing earlier files), which environments mount read-only at ``/opt``.

Unpacked code is removed by the reclaimer (``invocation/reclaim.py``) once nothing refers to it or holds
it: this module holds what it unpacks while it unpacks it, and ``hold``/``release`` are called for every
environment's image for as long as the environment lives.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from lambdad.environment import FunctionImage
from lambdad.errors import ResourceConflictException
from lambdad.models import LATEST, FunctionLayer, FunctionVersion, Scope
from lambdad.runtimes import (
    InstallError,
    Interpreter,
    RuntimeNotAvailable,
    UnknownRuntime,
    ensure_installed,
    find_interpreter,
)
from lambdad.sandbox import NetworkMode
from lambdad.services.activation import PreparationError
from lambdad.services.capacity_providers import max_concurrency
from lambdad.store import CodeStore

log = logging.getLogger(__name__)

# Hold keys of merged layer directories (code is held by its package's digest).
OPT_KEY_PREFIX = "opt/"
_RECLAIMED = (
    "The operation cannot be performed at this time. The function was updated or deleted while it was "
    "being invoked."
)


def merged_name(layer_digests: tuple[str, ...] | list[str]) -> str:
    """The directory name under ``opt_dir`` of a function's layers merged in this order."""
    return hashlib.sha256("\n".join(layer_digests).encode()).hexdigest()


class ImageBuilder:
    """Unpacked code under ``tasks_dir``, runtime clients under ``runtimes_dir``."""

    def __init__(
        self,
        code_store: CodeStore,
        tasks_dir: Path,
        runtimes_dir: Path,
        *,
        interpreters: Mapping[str, str | Path] | None = None,
        network: NetworkMode = NetworkMode.DEFAULT,
        opt_dir: Path | None = None,
    ) -> None:
        self._code = code_store
        self._holds = code_store.holds
        self._tasks = tasks_dir
        self._opt = opt_dir or tasks_dir.parent / "opt"
        self._runtimes = runtimes_dir
        self._overrides = dict(interpreters or {})
        self._network = network
        self._interpreters: dict[str, Interpreter] = {}
        self._runtime_dirs: dict[str, Path | None] = {}

    @property
    def tasks_dir(self) -> Path:
        """Where code is unpacked, one directory per package digest (the one place that says so)."""
        return self._tasks

    @property
    def opt_dir(self) -> Path:
        """Where functions' layers are merged, one directory per ordered tuple of layer digests."""
        return self._opt

    def hold(self, image: FunctionImage) -> None:
        """Keep an environment's code and layers on disk until ``release``; AWS's conflict error if
        they were reclaimed already (the version was updated or deleted since the image was made)."""
        keys = image_keys(image)
        self._holds.hold(keys)
        if not image.code_dir.is_dir() or (image.layers_dir is not None and not image.layers_dir.is_dir()):
            self._holds.release(keys)
            raise ResourceConflictException(_RECLAIMED)

    def release(self, image: FunctionImage) -> None:
        """Give back ``hold``."""
        self._holds.release(image_keys(image))

    def prepare(self, version: FunctionVersion) -> None:
        """Make the version runnable: unpack its code, install its runtime's client (idempotent).

        Failures are raised as ``PreparationError``s that say what failed without the host paths the
        underlying exception names (it is chained, and logged by the activator)."""
        with self._holds.holding(_version_keys(version)):
            self._prepare(version)

    def _prepare(self, version: FunctionVersion) -> None:
        try:
            self.unpack(version.code.sha256_hex)
        except (OSError, zipfile.BadZipFile) as error:
            raise PreparationError("The function's code could not be unpacked.") from error
        try:
            self.merge_layers(version.layers)
        except (OSError, zipfile.BadZipFile) as error:
            raise PreparationError("The function's layers could not be unpacked.") from error
        if not version.runtime:
            return
        try:
            self._runtime_dir(version.runtime)
        except (RuntimeNotAvailable, UnknownRuntime) as error:
            raise PreparationError(
                f"This server has no interpreter that can run the runtime {version.runtime}."
            ) from error
        except (InstallError, OSError) as error:
            raise PreparationError(
                f"The runtime client for {version.runtime} could not be installed on this server."
            ) from error

    def image_for(self, scope: Scope, version: FunctionVersion, network: str | None = None) -> FunctionImage:
        """The image of a prepared version (prepares it first if needed, e.g. after a restart), in the
        network mode given, else the server's default."""
        assert version.runtime and version.handler, "a Zip function always has both"
        with self._holds.holding(_version_keys(version)):
            code_dir = self.unpack(version.code.sha256_hex)
            layers_dir = self.merge_layers(version.layers)
        qualifier = None if version.version == LATEST else version.version
        return FunctionImage(
            function_name=version.name,
            version=version.version,
            # A published version gets environments of its own: the pool keys them by this ARN.
            function_arn=scope.function_arn(version.name, qualifier),
            region=scope.region,
            runtime=version.runtime,
            handler=version.handler,
            memory_mb=version.memory_size,
            timeout_s=version.timeout,
            ephemeral_mb=version.ephemeral_storage,
            code_dir=code_dir,
            runtime_dir=self._runtime_dir(version.runtime),
            interpreter=self._interpreter(version.runtime),
            environment=dict(version.environment),
            network=NetworkMode(network) if network else self._network,
            layers_dir=layers_dir,
            role=version.role,
            max_concurrency=max_concurrency(version),
        )

    def unpack(self, sha256_hex: str) -> Path:
        """The code package unpacked to ``tasks_dir/<digest>``, read-only for the function."""
        target = self._tasks / sha256_hex
        if target.exists():
            return target
        self._tasks.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{sha256_hex[:12]}.", dir=self._tasks))
        try:
            with zipfile.ZipFile(self._code.local(sha256_hex)) as archive:
                for info in archive.infolist():
                    extracted = Path(archive.extract(info, staging))  # extract() refuses ../ escapes
                    mode = (info.external_attr >> 16) & 0o777
                    if info.is_dir():
                        extracted.chmod(0o755)
                    else:
                        # World-readable (the function runs as an unprivileged uid); executable bits
                        # kept, so that a `bootstrap` stays runnable.
                        extracted.chmod(0o755 if mode & 0o111 else 0o644)
            staging.chmod(0o755)
            os.replace(staging, target)
        except OSError:
            if target.exists():  # another thread won the race
                shutil.rmtree(staging, ignore_errors=True)
                return target
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def merge_layers(self, layers: tuple[FunctionLayer, ...]) -> Path | None:
        """The layers unpacked and merged in order into one directory (``/opt`` of the function's
        environments); None without layers. Built once per ordered tuple of layer digests."""
        if not layers:
            return None
        digests = [layer.code.sha256_hex for layer in layers]
        target = self._opt / merged_name(digests)
        if target.exists():
            return target
        sources = [self.unpack(digest) for digest in digests]
        self._opt.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".merging-", dir=self._opt))
        try:
            for source in sources:
                _overlay(source, staging)
            staging.chmod(0o755)
            os.replace(staging, target)
        except OSError:
            if target.exists():  # another thread won the race
                return target
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def _interpreter(self, runtime: str) -> Interpreter:
        if runtime not in self._interpreters:
            self._interpreters[runtime] = find_interpreter(runtime, overrides=self._overrides)
        return self._interpreters[runtime]

    def _runtime_dir(self, runtime: str) -> Path | None:
        if runtime not in self._runtime_dirs:
            self._runtime_dirs[runtime] = ensure_installed(
                runtime, self._runtimes, interpreter=self._interpreter(runtime), progress=log.info
            )
        return self._runtime_dirs[runtime]


def image_keys(image: FunctionImage) -> list[str]:
    """What an environment of ``image`` holds: its code and its merged layers (the layers' own unpacked
    trees are not mounted, the merged tree hard-links their files)."""
    keys = [image.code_dir.name]
    if image.layers_dir is not None:
        keys.append(OPT_KEY_PREFIX + image.layers_dir.name)
    return keys


def _version_keys(version: FunctionVersion) -> list[str]:
    """What preparing ``version`` reads and writes: its package, its layers' packages, their merge."""
    digests = [layer.code.sha256_hex for layer in version.layers]
    keys = [version.code.sha256_hex, *digests]
    if digests:
        keys.append(OPT_KEY_PREFIX + merged_name(digests))
    return keys


def _overlay(source: Path, target: Path) -> None:
    """Put ``source``'s tree over ``target``'s: files are hard-linked (copied across file systems), a
    file or directory already there under the same name is replaced."""
    for entry in os.scandir(source):
        destination = target / entry.name
        if entry.is_dir(follow_symlinks=False):
            if destination.is_symlink() or (destination.exists() and not destination.is_dir()):
                destination.unlink()
            if not destination.exists():
                destination.mkdir(mode=0o755)
                destination.chmod(0o755)
            _overlay(Path(entry.path), destination)
            continue
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        elif destination.exists() or destination.is_symlink():
            destination.unlink()
        try:
            os.link(entry.path, destination, follow_symlinks=False)
        except OSError:
            shutil.copy2(entry.path, destination, follow_symlinks=False)
