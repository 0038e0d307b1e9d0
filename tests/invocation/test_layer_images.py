"""Layers merged into one /opt directory per ordered tuple of layer packages."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from lambdad.invocation import ImageBuilder
from lambdad.models import CodePackage, FunctionLayer
from lambdad.store import CodeStore
from tests.e2e.invoke_support import executable_zip


def layer(
    store: CodeStore, files: dict[str, str], executables: frozenset[str] = frozenset()
) -> FunctionLayer:
    data = executable_zip(files, set(executables))
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    return FunctionLayer(
        f"arn:aws:lambda:us-east-1:000000000000:layer:l{digest[:6]}:1", CodePackage(digest, len(data), 0)
    )


def builder(tmp_path: Path) -> tuple[ImageBuilder, CodeStore]:
    store = CodeStore(tmp_path / "code")
    return ImageBuilder(store, tmp_path / "tasks", tmp_path / "runtimes"), store


def test_later_layers_override_earlier_files_and_the_merge_is_reused(tmp_path: Path) -> None:
    images, store = builder(tmp_path)
    first = layer(store, {"python/a.py": "A = 1\n", "python/shared.py": "WHO = 'first'\n", "bin/x": "first"})
    second = layer(
        store, {"python/shared.py": "WHO = 'second'\n", "bootstrap": "#!/bin/sh\n"}, frozenset({"bootstrap"})
    )

    merged = images.merge_layers((first, second))
    assert merged is not None and merged.parent == tmp_path / "opt"
    assert (merged / "python" / "a.py").read_text() == "A = 1\n"
    assert (merged / "python" / "shared.py").read_text() == "WHO = 'second'\n"
    assert (merged / "bin" / "x").read_text() == "first"
    assert (merged / "bootstrap").stat().st_mode & stat.S_IXOTH
    assert stat.S_IMODE(merged.stat().st_mode) == 0o755
    assert images.merge_layers((first, second)) == merged

    reversed_order = images.merge_layers((second, first))
    assert reversed_order is not None and reversed_order != merged
    assert (reversed_order / "python" / "shared.py").read_text() == "WHO = 'first'\n"
    # The unpacked layers themselves are untouched by either merge.
    assert (images.unpack(first.code.sha256_hex) / "python" / "shared.py").read_text() == "WHO = 'first'\n"
    assert images.merge_layers(()) is None


def test_a_file_replaces_a_directory_and_the_other_way_round(tmp_path: Path) -> None:
    images, store = builder(tmp_path)
    directory = layer(store, {"thing/inside.txt": "in a directory"})
    file = layer(store, {"thing": "a file"})

    merged = images.merge_layers((directory, file))
    assert merged is not None and (merged / "thing").read_text() == "a file"
    merged = images.merge_layers((file, directory))
    assert merged is not None and (merged / "thing" / "inside.txt").read_text() == "in a directory"
