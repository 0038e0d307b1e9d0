"""Checking an uploaded code package before it is stored."""

from __future__ import annotations

import io
import zipfile
import zlib

from lambdad.errors import InvalidParameterValueException, RequestTooLargeException
from lambdad.services import limits

_NOT_A_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


def unzipped_size(data: bytes) -> int:
    """The unpacked size of a zip, after checking it is a readable zip within AWS's size limits."""
    if len(data) > limits.ZIPPED_CODE_MAX:
        raise RequestTooLargeException(f"Zipped size must be smaller than {limits.ZIPPED_CODE_MAX} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > limits.UNZIPPED_CODE_MAX:
                raise InvalidParameterValueException(
                    f"Unzipped size must be smaller than {limits.UNZIPPED_CODE_MAX} bytes"
                )
            # Reads every member and checks its CRC: a truncated or corrupt zip fails here, not at a
            # cold start.
            if archive.testzip() is not None:
                raise InvalidParameterValueException(_NOT_A_ZIP)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise InvalidParameterValueException(_NOT_A_ZIP) from error
    return total
