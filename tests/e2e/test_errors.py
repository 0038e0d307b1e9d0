"""Malformed and oversized requests, unimplemented operations: AWS-shaped answers, nothing stored."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support import ROLE, make_zip

pytestmark = pytest.mark.e2e


def raw(server: Any, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """A request as urllib sends it, signed as root (malformed bodies are the point, not signatures)."""
    headers = server.signed_headers(method, path, body=body or b"")
    request = urllib.request.Request(server.endpoint + path, data=body, method=method, headers=headers)
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_body_that_is_not_json_gets_invalid_request_content(server: Any, client: Any) -> None:
    status, headers, body = raw(server, "POST", "/2015-03-31/functions", b"{not json")
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert json.loads(body)["message"].startswith("Could not parse request body into json")
    assert client.list_functions()["Functions"] == []


def test_json_value_of_wrong_type_is_refused_without_a_traceback(server: Any) -> None:
    document = {
        "FunctionName": "typed",
        "Role": ROLE,
        "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},
        "MemorySize": "lots",
    }
    status, headers, body = raw(server, "POST", "/2015-03-31/functions", json.dumps(document).encode())
    assert status == 400
    assert headers["x-amzn-errortype"] == "SerializationException"
    assert b"Traceback" not in body


def test_upload_over_50_mb_gets_request_too_large_and_stores_nothing(client: Any) -> None:
    # Incompressible bytes, stored rather than deflated, so the zip really is over 50 MB.
    import io
    import os
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("blob.bin", os.urandom(52_428_800 + 1024))
    with pytest.raises(client.exceptions.RequestTooLargeException) as excinfo:
        client.create_function(
            FunctionName="too-big",
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": buffer.getvalue()},
        )
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "Zipped size must be smaller than 52428800 bytes" in str(excinfo.value)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="too-big")


def test_request_body_past_the_limit_is_refused_before_it_is_read(server: Any) -> None:
    status, headers, _ = raw(server, "POST", "/2015-03-31/functions", b" " * 72_000_000)
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestTooLargeException"


def test_unimplemented_operation_names_itself(client: Any) -> None:
    with pytest.raises(Exception) as excinfo:
        client.list_durable_executions_by_function(FunctionName="f")
    response = excinfo.value.response  # type: ignore[attr-defined]
    assert response["Error"]["Code"] == "NotImplementedException"
    assert "ListDurableExecutionsByFunction" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_unknown_path_answers_an_aws_error_not_a_page(server: Any) -> None:
    status, headers, body = raw(server, "GET", "/no/such/thing")
    assert status == 404
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    assert "GET /no/such/thing" in json.loads(body)["message"]


def test_every_answer_carries_a_request_id(server: Any, client: Any) -> None:
    answer = client.list_functions()
    assert answer["ResponseMetadata"]["RequestId"]
    status, headers, _ = raw(server, "GET", "/2015-03-31/functions/missing")
    assert status == 404 and headers["x-amzn-requestid"]


def test_zip_with_corrupt_member_is_refused(client: Any) -> None:
    good = bytearray(make_zip({"handler.py": "x" * 1000}))
    good[40] ^= 0xFF  # inside the compressed data: CRC no longer matches
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.create_function(
            FunctionName="corrupt",
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": bytes(good)},
        )


def test_code_storage_quota_gets_code_storage_exceeded(tmp_path: Any) -> None:
    from tests.support import Server, create_function

    # The limit counts each package stored once, with its zip and its unpacked files (here one small
    # file: one 4 KiB block).
    stored = len(make_zip()) + 4096
    server = Server(tmp_path / "data", extra_args=["--code-storage-limit", str(stored + 10)]).start()
    try:
        client = server.client()
        create_function(client, "fits", wait=False)
        create_function(client, "same-code-fits-too", wait=False)
        with pytest.raises(client.exceptions.CodeStorageExceededException) as excinfo:
            client.create_function(
                FunctionName="overflows",
                Runtime="python3.12",
                Role=ROLE,
                Handler="handler.handler",
                Code={"ZipFile": make_zip({"handler.py": "# other code\n"})},
            )
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert excinfo.value.response["Error"]["Message"] == "Code storage limit exceeded."
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_function(FunctionName="overflows")
        assert client.get_account_settings()["AccountLimit"]["TotalCodeSize"] == stored + 10
    finally:
        server.stop()


def test_api_rate_limit_answers_too_many_requests(tmp_path: Any) -> None:
    from tests.support import Server

    server = Server(tmp_path / "data", extra_args=["--api-rate-limit", "2"]).start()
    try:
        client = server.client()
        with pytest.raises(client.exceptions.TooManyRequestsException) as excinfo:
            for _ in range(20):
                client.list_functions()
        response = excinfo.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert response["Reason"] == "CallerRateLimitExceeded"
        assert response["retryAfterSeconds"] == "1"
    finally:
        server.stop()
