"""rest-json parsing and serialising, driven by the model."""

from __future__ import annotations

import base64
import json

import pytest

from lambdad.api.protocol import parse_request, serialize_response
from lambdad.api.service_model import lambda_model
from lambdad.errors import InvalidRequestContentException, SerializationException


def op(name: str) -> object:
    return lambda_model().operation_model(name)


def test_body_members_blobs_and_uri_labels_are_parsed() -> None:
    body = json.dumps(
        {"FunctionName": "f", "Code": {"ZipFile": base64.b64encode(b"zip").decode()}, "MemorySize": 256}
    ).encode()
    params = parse_request(op("CreateFunction"), {}, {}, {}, body)  # type: ignore[arg-type]
    assert params == {"FunctionName": "f", "Code": {"ZipFile": b"zip"}, "MemorySize": 256}


def test_query_strings_are_typed_and_lists_repeat() -> None:
    params = parse_request(op("ListFunctions"), {}, {"MaxItems": ["5"], "Marker": ["m"]}, {}, b"")  # type: ignore[arg-type]
    assert params == {"MaxItems": 5, "Marker": "m"}
    untag = parse_request(op("UntagResource"), {"Resource": "arn"}, {"tagKeys": ["a", "b"]}, {}, b"")  # type: ignore[arg-type]
    assert untag == {"Resource": "arn", "TagKeys": ["a", "b"]}


def test_headers_and_raw_blob_payloads_are_parsed() -> None:
    params = parse_request(
        op("Invoke"),
        {"FunctionName": "f"},
        {},
        {"x-amz-invocation-type": "Event"},
        b'{"k": 1}',  # type: ignore[arg-type]
    )
    assert params == {"FunctionName": "f", "InvocationType": "Event", "Payload": b'{"k": 1}'}


def test_body_that_is_not_json_is_invalid_request_content() -> None:
    with pytest.raises(InvalidRequestContentException):
        parse_request(op("CreateFunction"), {}, {}, {}, b"{nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body", [b'{"MemorySize": "big"}', b'{"MemorySize": true}', b"[1]", b'{"Code": {"ZipFile": "***"}}']
)
def test_values_of_the_wrong_type_are_serialization_errors(body: bytes) -> None:
    with pytest.raises(SerializationException):
        parse_request(op("CreateFunction"), {}, {}, {}, body)  # type: ignore[arg-type]


def test_integer_query_value_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(SerializationException):
        parse_request(op("ListFunctions"), {}, {"MaxItems": ["many"]}, {}, b"")  # type: ignore[arg-type]


def test_response_members_go_to_status_headers_and_payload() -> None:
    answer = serialize_response(
        op("Invoke"),  # type: ignore[arg-type]
        {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST", "Payload": b"raw"},
        200,
    )
    assert answer.status == 200
    assert answer.headers["X-Amz-Function-Error"] == "Unhandled"
    assert answer.body == b"raw"


def test_empty_204_answers_have_no_body() -> None:
    answer = serialize_response(op("TagResource"), {}, 204)  # type: ignore[arg-type]
    assert (answer.status, answer.body) == (204, b"")


def test_unknown_output_members_are_a_bug() -> None:
    with pytest.raises(KeyError):
        serialize_response(op("ListTags"), {"Tags": {}, "Nope": 1}, 200)  # type: ignore[arg-type]
