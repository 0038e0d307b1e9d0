"""The rest-json protocol, server side: requests into parameters, results into responses.

botocore serialises requests and parses responses on the client; this module is its mirror image,
driven by the same shapes, so that a new operation needs a handler and no parsing code. ``RestJson``
is this protocol as the dispatcher sees it (``wire.WireProtocol``): routes by method and path, errors
as ``x-amzn-ErrorType`` and a JSON body.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.model import OperationModel, Shape, StructureShape

from lambdad.api.service_model import find_route, success_status
from lambdad.api.wire import DEFAULT_BODY_LIMIT, FORM_BODY_LIMIT, Answer, Found, Incoming
from lambdad.errors import (
    InvalidRequestContentException,
    LambdaError,
    SerializationException,
    UnknownOperationException,
)

if TYPE_CHECKING:
    from lambdad.api.dispatch import ServiceApi

# Operations with their own body limits, and the name AWS's message gives them.
BODY_LIMITS = {
    "Invoke": ("InvokeFunction", 6_291_456),
    "InvokeWithResponseStream": ("InvokeWithResponseStream", 6_291_456),
    "InvokeAsync": ("InvokeAsync", 262_144),
}


class RestJson:
    """rest-json (Lambda, EventBridge Scheduler, Signer) for the dispatcher."""

    async def find(self, api: ServiceApi, incoming: Incoming) -> Found | None:
        found = find_route(incoming.method, incoming.raw_path, incoming.query, api.model)
        return None if found is None else Found(found[0].operation, found[1])

    def unknown(self, api: ServiceApi, incoming: Incoming) -> LambdaError:
        return UnknownOperationException(f"No operation serves {incoming.method} {incoming.raw_path}")

    async def body(self, api: ServiceApi, incoming: Incoming) -> bytes:
        found = await self.find(api, incoming)
        if found is None:  # answered UnknownOperation (after authentication): no room for a large body
            return await incoming.body("", FORM_BODY_LIMIT)
        name = found.operation.name
        return await incoming.body(*BODY_LIMITS.get(name, (name, DEFAULT_BODY_LIMIT)))

    async def parse(self, api: ServiceApi, found: Found, incoming: Incoming) -> dict[str, Any]:
        body = await self.body(api, incoming)
        return parse_request(found.operation, found.uri_params, incoming.query, incoming.headers, body)

    def serialize(self, api: ServiceApi, found: Found, output: Mapping[str, Any], request_id: str) -> Answer:
        serialized = serialize_response(found.operation, output, success_status(found.operation))
        serialized.headers["x-amzn-RequestId"] = request_id
        return Answer(serialized.status, serialized.headers, serialized.body, serialized.stream)

    def error(self, api: ServiceApi | None, error: LambdaError, request_id: str) -> Answer:
        """Status, ``x-amzn-ErrorType`` and a JSON body in ``api``'s conventions (Lambda's by default)."""
        body: dict[str, Any] = {}
        if error.fault and (api is None or api.fault_in_body):
            body["Type"] = error.fault
        body[(api.message_key if api else None) or error.message_key] = error.message
        body.update(error.fields)
        headers = {
            **error.headers,
            "x-amzn-ErrorType": error.code,
            "x-amzn-RequestId": request_id,
            "content-type": "application/json",
        }
        return Answer(error.status, headers, json.dumps(body).encode())


# --- requests ---------------------------------------------------------------------------------------


def parse_request(
    operation: OperationModel,
    uri_params: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's input parameters from the parts of an HTTP request (``headers`` lower-cased)."""
    shape = operation.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    payload_member = shape.serialization.get("payload")
    body_members: dict[str, Shape] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            if wire_name in uri_params:
                params[name] = _from_text(member, uri_params[wire_name], name)
        elif location == "querystring":
            if member.type_name == "map":
                params[name] = {key: values[-1] for key, values in query.items()}
            elif wire_name in query:
                values = query[wire_name]
                if member.type_name == "list":
                    params[name] = [_from_text(member.member, v, name) for v in values]  # type: ignore[attr-defined]
                else:
                    params[name] = _from_text(member, values[-1], name)
        elif location == "header":
            if wire_name.lower() in headers:
                params[name] = _from_header(member, headers[wire_name.lower()], name)
        elif location == "headers":
            prefix = wire_name.lower()
            params[name] = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
        elif name == payload_member:
            if member.type_name in ("blob", "string"):
                if body:
                    params[name] = body if member.type_name == "blob" else body.decode()
            elif body:
                params[name] = _from_json(member, _load_json(body), name)
        else:
            body_members[name] = member
    if body_members and not payload_member and body:
        document = _load_json(body)
        if not isinstance(document, dict):
            raise SerializationException("Start of structure or map found where not expected.")
        for name, member in body_members.items():
            if name in document and document[name] is not None:
                params[name] = _from_json(member, document[name], name)
    return params


#: What a body nested past the parser's depth is answered with (Python's parser stops at its recursion
#: limit, about 1,000 levels; AWS's Jackson parser at 1,000).
TOO_DEEP = "Document nesting depth exceeds the maximum allowed"


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {error}"
        ) from error
    except RecursionError as error:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {TOO_DEEP}"
        ) from error


def _from_text(shape: Shape, text: str, where: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
    except ValueError as error:
        raise SerializationException(f"Value '{text}' at '{where}' is not a number.") from error
    if kind == "boolean":
        return text.lower() == "true"
    return text


def _from_header(shape: Shape, text: str, where: str) -> Any:
    if shape.serialization.get("jsonvalue"):
        try:
            return json.loads(base64.b64decode(text))
        except (ValueError, binascii.Error, RecursionError) as error:
            raise SerializationException(f"Header for '{where}' is not base64-encoded JSON.") from error
    return _from_text(shape, text, where)


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "long": int,
    "float": (int, float),
    "double": (int, float),
    "boolean": bool,
    "structure": dict,
    "map": dict,
    "list": list,
}


def _from_json(shape: Shape, value: Any, where: str) -> Any:
    kind = shape.type_name
    expected = _JSON_TYPES.get(kind)
    # bool is an int in Python; JSON true is not a number.
    if expected is not None and (
        not isinstance(value, expected) or (kind in ("integer", "long") and isinstance(value, bool))
    ):
        raise SerializationException(f"Unexpected value type for '{where}': expected {kind}.")
    if kind == "blob":
        if not isinstance(value, str):
            raise SerializationException(f"Unexpected value type for '{where}': expected base64 text.")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as error:
            raise SerializationException(f"Value at '{where}' is not valid base64.") from error
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        return {
            name: _from_json(member, value[name], f"{where}.{name}")
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_from_json(shape.member, item, where) for item in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {
            _from_json(shape.key, k, where): _from_json(shape.value, v, where)  # type: ignore[attr-defined]
            for k, v in value.items()
        }
    return value


# --- responses --------------------------------------------------------------------------------------


class SerializedResponse:
    """Status, headers and body of an answer."""

    def __init__(
        self, status: int, headers: dict[str, str], body: bytes, stream: AsyncIterable[bytes] | None = None
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream  # an event stream's encoded messages, sent as they come (body is then empty)


def serialize_response(
    operation: OperationModel, output: Mapping[str, Any], status: int
) -> SerializedResponse:
    """An operation's result as an HTTP response. Members the output shape lacks are a bug: they raise."""
    shape = operation.output_shape
    headers = {"content-type": "application/json"}
    if shape is None:
        return SerializedResponse(status, headers, b"")
    unknown = set(output) - set(shape.members)
    if unknown:
        raise KeyError(f"{operation.name} output has no members {sorted(unknown)}")
    payload_member = shape.serialization.get("payload")
    document: dict[str, Any] = {}
    body = b""
    stream: AsyncIterable[bytes] | None = None
    for name, value in output.items():
        if value is None:
            continue
        member = shape.members[name]
        location = member.serialization.get("location")
        if location == "statusCode":
            status = int(value)
        elif location == "header":
            wire_name = member.serialization.get("name", name)
            if member.serialization.get("jsonvalue"):
                headers[wire_name] = base64.b64encode(json.dumps(value).encode()).decode()
            else:
                headers[wire_name] = _header_text(value)
        elif name == payload_member:
            if member.serialization.get("eventstream"):
                stream = value  # already encoded (api/eventstream.py)
                headers["content-type"] = "application/vnd.amazon.eventstream"
            elif member.type_name == "blob":
                body = bytes(value)
            elif member.type_name == "string":
                body = str(value).encode()
            else:
                body = json.dumps(_to_json(member, value)).encode()
        else:
            document[name] = _to_json(member, value)
    if not payload_member and (document or status not in (202, 204)):
        body = json.dumps(document).encode()
    return SerializedResponse(status, headers, body, stream)


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return str(value)


def _to_json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "blob":
        return base64.b64encode(bytes(value)).decode()
    if kind == "timestamp":
        return value.timestamp() if isinstance(value, datetime) else value
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        unknown = set(value) - set(shape.members)
        if unknown:
            raise KeyError(f"{shape.name} has no members {sorted(unknown)}")
        return {k: _to_json(shape.members[k], v) for k, v in value.items() if v is not None}
    if kind == "list":
        return [_to_json(shape.member, item) for item in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {k: _to_json(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    return value
