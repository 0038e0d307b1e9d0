"""Zips that cannot be unpacked as they are are refused at upload, as AWS refuses a zip it cannot unzip,
by CreateFunction, UpdateFunctionCode and PublishLayerVersion alike (they used to be accepted and to
fail at activation with a host path in StateReason)."""

from __future__ import annotations

import io
import warnings
import zipfile
from typing import Any

import pytest

from tests.e2e.invoke_support import ACTIVE_WAIT, deploy_python, unique
from tests.support import ROLE

pytestmark = pytest.mark.e2e

NOT_A_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
HANDLER = "def handler(event, context):\n    return 'ok'\n"


def zip_of(*members: tuple[str, bytes] | tuple[str, bytes, int]) -> bytes:
    """A zip of (name, content[, unix mode]) members, in order, duplicates and all."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name; writing one is the point
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("handler.py", HANDLER)
            for member in members:
                info = zipfile.ZipInfo(member[0], date_time=(2026, 1, 1, 0, 0, 0))
                if len(member) == 3:
                    info.external_attr = member[2] << 16
                archive.writestr(info, member[1])
    return buffer.getvalue()


SYMLINK = 0o120777
BAD_ZIPS = {
    "component over 255 bytes": zip_of(("d/" + "n" * 256 + ".py", b"x")),
    "path over 4096 bytes": zip_of(("/".join(["d" * 200] * 21) + "/f.py", b"x")),
    "file and folder (file first)": zip_of(("a", b"x"), ("a/b.py", b"x")),
    "file and folder (folder first)": zip_of(("a/b.py", b"x"), ("a", b"x")),
    "file and folder entry": zip_of(("a", b"x"), ("a/", b"")),
    "absolute path": zip_of(("/etc/cron.d/x", b"x")),
    "dot-dot escape": zip_of(("lib/../../x.py", b"x")),
    "duplicate name": zip_of(("handler.py", b"def handler(e, c):\n    return 'other'\n")),
    "symlink to an absolute path": zip_of(("leak", b"/etc/shadow", SYMLINK)),
    "symlink climbing out": zip_of(("lib/leak", b"../../proc/1/root", SYMLINK)),
}


@pytest.mark.parametrize("package", BAD_ZIPS.values(), ids=BAD_ZIPS.keys())
def test_unpackable_zip_is_refused_by_create_update_and_publish_layer(client: Any, package: bytes) -> None:
    name = unique("bad-zip")

    def refused(call: Any, **params: Any) -> None:
        with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
            call(**params)
        error = excinfo.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Error"]["Message"] == NOT_A_ZIP

    refused(
        client.create_function,
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": package},
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=name)
    refused(client.publish_layer_version, LayerName=name, Content={"ZipFile": package})
    assert client.list_layer_versions(LayerName=name)["LayerVersions"] == []

    deploy_python(client, name, HANDLER)
    refused(client.update_function_code, FunctionName=name, ZipFile=package)
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
    assert client.invoke(FunctionName=name)["Payload"].read() == b'"ok"'
    client.delete_function(FunctionName=name)


def test_links_and_names_inside_the_package_are_accepted(client: Any) -> None:
    name = unique("good-zip")
    package = zip_of(
        ("lib/", b""),
        ("lib/data.txt", b"data"),
        ("lib/same", b"data.txt", SYMLINK),
        ("lib/up", b"../handler.py", SYMLINK),
        ("./dotted.py", b"x"),
        ("n" * 255, b"x"),
    )
    client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": package},
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=ACTIVE_WAIT)
    assert client.invoke(FunctionName=name)["Payload"].read() == b'"ok"'
    client.delete_function(FunctionName=name)
