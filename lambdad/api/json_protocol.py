"""The json protocol (awsJson 1.0/1.1: SQS, DynamoDB, CloudWatch Logs, EventBridge, KMS...), server side.

A request is ``POST /`` naming its operation in ``X-Amz-Target: {targetPrefix}.{Operation}`` with the
input as a JSON body; an answer is the output as JSON (``application/x-amz-json-{jsonVersion}``); an error
is ``{"__type": CODE, "message": ...}``, read by botocore's ``JSONParser``. Values are written as in
rest-json (``protocol.py``): timestamps as epoch seconds, blobs in base64.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lambdad.api.protocol import _from_json, _load_json, _to_json
from lambdad.api.wire import DEFAULT_BODY_LIMIT, Answer, Found, Incoming
from lambdad.errors import LambdaError, SerializationException, UnknownOperationException

if TYPE_CHECKING:
    from lambdad.api.dispatch import ServiceApi


class Json:
    """The json protocol for the dispatcher."""

    async def find(self, api: ServiceApi, incoming: Incoming) -> Found | None:
        if incoming.method != "POST":
            return None
        prefix, _, name = incoming.headers.get("x-amz-target", "").rpartition(".")
        model = api.service_model
        if prefix != model.metadata.get("targetPrefix") or name not in model.operation_names:
            return None
        return Found(model.operation_model(name))

    def unknown(self, api: ServiceApi, incoming: Incoming) -> LambdaError:
        return UnknownOperationException("")  # AWS's json services say no more (400, see ``error``)

    async def body(self, api: ServiceApi, incoming: Incoming) -> bytes:
        found = await self.find(api, incoming)
        return await incoming.body(found.operation.name if found else "", DEFAULT_BODY_LIMIT)

    async def parse(self, api: ServiceApi, found: Found, incoming: Incoming) -> dict[str, Any]:
        shape = found.operation.input_shape
        body = await self.body(api, incoming)
        if shape is None or not body:
            return {}
        document = _load_json(body)
        if not isinstance(document, dict):
            raise SerializationException("Start of structure or map found where not expected.")
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            value = document.get(member.serialization.get("name", name))
            if value is not None:
                params[name] = _from_json(member, value, name)
        return params

    def serialize(self, api: ServiceApi, found: Found, output: Mapping[str, Any], request_id: str) -> Answer:
        shape = found.operation.output_shape
        document: dict[str, Any] = {}
        if shape is not None:
            unknown = set(output) - set(shape.members)
            if unknown:
                raise KeyError(f"{found.operation.name} output has no members {sorted(unknown)}")
            for name, value in output.items():
                if value is not None:
                    member = shape.members[name]
                    document[member.serialization.get("name", name)] = _to_json(member, value)
        return Answer(200, _headers(api, request_id), json.dumps(document).encode())

    def error(self, api: ServiceApi | None, error: LambdaError, request_id: str) -> Answer:
        # Lambda's UnknownOperationException is a 404 of its REST paths; json services answer it 400.
        status = 400 if isinstance(error, UnknownOperationException) else error.status
        body = {"__type": error.code, "message": error.message, **error.fields}
        headers = {**error.headers, **_headers(api, request_id)}
        return Answer(status, headers, json.dumps(body).encode())


def _headers(api: ServiceApi | None, request_id: str) -> dict[str, str]:
    version = api.service_model.metadata.get("jsonVersion", "1.0") if api is not None else "1.0"
    return {"content-type": f"application/x-amz-json-{version}", "x-amzn-RequestId": request_id}
