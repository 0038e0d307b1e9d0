"""The ec2 protocol, server side: the query protocol (``query_protocol.py``) with EC2's differences.

botocore's ``EC2Serializer`` and ``EC2QueryParser`` name them: input members take ``queryName``, else
their ``locationName`` capitalised; lists are numbered directly (``VpcId.1``, no ``.member.``); answers
are ``<{Action}Response xmlns=...><requestId>`` followed by the members, with no Result wrapper; errors
are ``<Response><Errors><Error><Code><Message></Error></Errors><RequestID></Response>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, SubElement, tostring

from botocore.model import ListShape, OperationModel, Shape

from lambdad.api.query_protocol import CONTENT_TYPE, Query, xml_text
from lambdad.api.wire import Answer, Incoming
from lambdad.errors import InvalidAction, LambdaError, MissingAction

if TYPE_CHECKING:
    from lambdad.api.dispatch import ServiceApi


class Ec2(Query):
    """The ec2 protocol for the dispatcher."""

    renamed_codes: Mapping[str, str] = {
        "ValidationException": "InvalidParameterValue",
        "SerializationException": "InvalidParameterValue",
    }

    def unknown(self, api: ServiceApi, incoming: Incoming) -> LambdaError:
        action = incoming.peek_form().get("Action")
        if not action:
            return MissingAction("The request must contain the parameter Action")
        return InvalidAction(f"The action {action} is not valid for this web service.")

    def member_name(self, shape: Shape, name: str) -> str:
        if "queryName" in shape.serialization:
            return str(shape.serialization["queryName"])
        location = shape.serialization.get("name")
        return str(location[0].upper() + location[1:]) if location else name

    def list_prefix(self, shape: ListShape, prefix: str) -> str:
        return prefix

    def write_output(
        self, root: Element, operation: OperationModel, output: Mapping[str, Any], request_id: str
    ) -> None:
        SubElement(root, "requestId").text = request_id
        shape = operation.output_shape
        if shape is None:
            SubElement(root, "return").text = "true"  # what EC2 answers an action with no output
        else:
            self.write_structure(root, shape, output)

    def error(self, api: ServiceApi | None, error: LambdaError, request_id: str) -> Answer:
        root = Element("Response")
        detail = SubElement(SubElement(root, "Errors"), "Error")
        SubElement(detail, "Code").text = self.renamed_codes.get(error.code, error.code)
        SubElement(detail, "Message").text = xml_text(error.message)
        SubElement(root, "RequestID").text = request_id
        headers = {**error.headers, "content-type": CONTENT_TYPE, "x-amzn-RequestId": request_id}
        return Answer(error.status, headers, tostring(root))
