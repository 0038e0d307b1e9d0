"""What a package counts for on disk (services.code.disk_size): its zip and every member unpacked in
whole 4 KiB blocks, at least one each."""

from __future__ import annotations

import io
import zipfile

from lambdad.services.code import BLOCK, check_package


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_members_count_in_whole_blocks_and_at_least_one() -> None:
    data = zip_of({"empty": b"", "one": b"x", "block": bytes(BLOCK), "more": bytes(BLOCK + 1), "dir/": b""})
    package = check_package(data)
    assert package.size == len(data)
    assert package.unzipped_size == 2 * BLOCK + 2  # AWS's figure: the members' bytes
    assert package.disk_size == len(data) + BLOCK + BLOCK + BLOCK + 2 * BLOCK + BLOCK
    assert package.stored_size == package.disk_size


def test_many_tiny_files_count_for_what_they_fill() -> None:
    package = check_package(zip_of({f"tiny/{index}": b"x" for index in range(500)}))
    assert package.unzipped_size == 500
    assert package.disk_size >= 500 * BLOCK
