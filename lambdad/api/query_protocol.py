"""The query protocol (IAM, STS), server side: form parameters into input, results into XML.

A request is a form (POST body, or the query string) naming ``Action`` and ``Version``; its members are
flattened into dotted names the way botocore's ``QuerySerializer`` writes them (``Tags.member.1.Key``,
``Attributes.entry.1.key``, ``locationName`` where the model gives one). An answer is
``<{Action}Response><{Action}Result>...</{Action}Result><ResponseMetadata><RequestId>`` read back by
botocore's ``QueryParser``; an error is ``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>
<Message></Error><RequestId></ErrorResponse>``. ``ec2_protocol.py`` is the same with EC2's differences.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, SubElement, tostring

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.utils import parse_timestamp

from lambdad.api.wire import FORM_BODY_LIMIT, Answer, Found, Incoming
from lambdad.errors import InvalidAction, LambdaError, MissingAction, ValidationException

if TYPE_CHECKING:
    from lambdad.api.dispatch import ServiceApi

CONTENT_TYPE = "text/xml"


class Query:
    """The query protocol for the dispatcher; ``Ec2`` overrides the hooks where EC2 differs."""

    #: Error codes the query services spell differently from the shared error classes.
    renamed_codes: Mapping[str, str] = {
        "ValidationException": "ValidationError",
        "SerializationException": "ValidationError",
        # IAM and STS answer a policy's denial as AccessDenied ("User: ... is not authorized to perform").
        "AccessDeniedException": "AccessDenied",
    }

    # --- requests ------------------------------------------------------------------------------------

    async def find(self, api: ServiceApi, incoming: Incoming) -> Found | None:
        if incoming.method not in ("GET", "POST"):
            return None
        action = (await incoming.form()).get("Action")
        if not action or action not in api.service_model.operation_names:
            return None
        return Found(api.service_model.operation_model(action))

    async def body(self, api: ServiceApi, incoming: Incoming) -> bytes:
        return await incoming.body("", FORM_BODY_LIMIT)

    def unknown(self, api: ServiceApi, incoming: Incoming) -> LambdaError:
        form = incoming.peek_form()
        action = form.get("Action")
        if not action:
            return MissingAction("Could not find an Action in the request")
        version = form.get("Version") or api.service_model.api_version
        return InvalidAction(f"Could not find operation {action} for version {version}")

    async def parse(self, api: ServiceApi, found: Found, incoming: Incoming) -> dict[str, Any]:
        shape = found.operation.input_shape
        if shape is None:
            return {}
        form = await incoming.form()
        return self._structure(shape, _Form(form), "")

    def member_name(self, shape: Shape, name: str) -> str:
        """A member's name on the wire (botocore: ``_get_serialized_name``)."""
        return str(shape.serialization.get("name", name))

    def list_prefix(self, shape: ListShape, prefix: str) -> str:
        """Where a list's items are numbered (``Items.member.N``; flattened: ``Items.N``)."""
        if shape.serialization.get("flattened"):
            name = shape.member.serialization.get("name")
            return ".".join([*prefix.split(".")[:-1], name]) if name else prefix
        return f"{prefix}.{shape.member.serialization.get('name', 'member')}"

    def _structure(self, shape: StructureShape, form: _Form, prefix: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = self.member_name(member, name)
            value = self._value(member, form, f"{prefix}.{wire}" if prefix else wire, name)
            if value is not None:
                params[name] = value
        return params

    def _value(self, shape: Shape, form: _Form, prefix: str, where: str) -> Any:
        if not form.has(prefix):
            return None
        if isinstance(shape, StructureShape):
            return self._structure(shape, form, prefix)
        if isinstance(shape, ListShape):
            if form.values.get(prefix) == "":
                return []  # the query protocol's empty list
            items = []
            item_prefix = self.list_prefix(shape, prefix)
            index = 1
            while form.has(f"{item_prefix}.{index}"):
                items.append(self._value(shape.member, form, f"{item_prefix}.{index}", where))
                index += 1
            return items
        if isinstance(shape, MapShape):
            entries = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
            key_name = shape.key.serialization.get("name", "key")
            value_name = shape.value.serialization.get("name", "value")
            result: dict[Any, Any] = {}
            index = 1
            while form.has(f"{entries}.{index}"):
                key = self._value(shape.key, form, f"{entries}.{index}.{key_name}", where)
                result[key] = self._value(shape.value, form, f"{entries}.{index}.{value_name}", where)
                index += 1
            return result
        if prefix not in form.values:
            return None
        return _scalar(shape, form.values[prefix], where)

    # --- answers -------------------------------------------------------------------------------------

    def serialize(self, api: ServiceApi, found: Found, output: Mapping[str, Any], request_id: str) -> Answer:
        operation = found.operation
        root = Element(f"{operation.name}Response", xmlns=namespace(api))
        self.write_output(root, operation, output, request_id)
        return Answer(200, _headers(request_id), tostring(root, xml_declaration=False))

    def write_output(
        self, root: Element, operation: OperationModel, output: Mapping[str, Any], request_id: str
    ) -> None:
        """The members under ``<{Action}Result>`` (the shape's ``resultWrapper``), then the metadata."""
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper")
            parent = SubElement(root, wrapper) if wrapper else root
            self.write_structure(parent, shape, output)
        metadata = SubElement(root, "ResponseMetadata")
        SubElement(metadata, "RequestId").text = request_id

    def write_structure(self, parent: Element, shape: StructureShape, value: Mapping[str, Any]) -> None:
        """A structure's members as children of ``parent``. Members the shape lacks are a bug: they raise."""
        unknown = set(value) - set(shape.members)
        if unknown:
            raise KeyError(f"{shape.name} has no members {sorted(unknown)}")
        for name, item in value.items():
            if item is None:
                continue
            member = shape.members[name]
            tag = _member_tag(member, name)
            if isinstance(member, ListShape) and member.serialization.get("flattened"):
                for element in item:
                    self._write(SubElement(parent, tag), member.member, element)
            elif isinstance(member, MapShape) and member.serialization.get("flattened"):
                for key, entry in item.items():
                    self._write_entry(SubElement(parent, tag), member, key, entry)
            else:
                self._write(SubElement(parent, tag), member, item)

    def _write(self, element: Element, shape: Shape, value: Any) -> None:
        if isinstance(shape, StructureShape):
            self.write_structure(element, shape, value)
        elif isinstance(shape, ListShape):
            tag = shape.member.serialization.get("name", "member")
            for item in value:
                self._write(SubElement(element, tag), shape.member, item)
        elif isinstance(shape, MapShape):
            for key, entry in value.items():
                self._write_entry(SubElement(element, "entry"), shape, key, entry)
        else:
            element.text = xml_text(_text(shape, value))

    def _write_entry(self, element: Element, shape: MapShape, key: Any, value: Any) -> None:
        self._write(SubElement(element, shape.key.serialization.get("name", "key")), shape.key, key)
        self._write(SubElement(element, shape.value.serialization.get("name", "value")), shape.value, value)

    def error(self, api: ServiceApi | None, error: LambdaError, request_id: str) -> Answer:
        root = Element("ErrorResponse")
        if api is not None:
            root.set("xmlns", namespace(api))
        detail = SubElement(root, "Error")
        SubElement(detail, "Type").text = "Receiver" if error.status >= 500 else "Sender"
        SubElement(detail, "Code").text = self.renamed_codes.get(error.code, error.code)
        SubElement(detail, "Message").text = xml_text(error.message)
        SubElement(root, "RequestId").text = request_id
        return Answer(error.status, {**error.headers, **_headers(request_id)}, tostring(root))


class _Form:
    """Form parameters, and every dotted prefix of their names (so presence is one look-up)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self._prefixes: set[str] = set()
        for name in values:
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                self._prefixes.add(".".join(parts[:end]))

    def has(self, prefix: str) -> bool:
        return prefix in self._prefixes


def _scalar(shape: Shape, text: str, where: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "timestamp":
            return parse_timestamp(text)
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except (ValueError, TypeError, OverflowError, binascii.Error) as error:
        raise ValidationException(f"Value '{text}' at '{where}' is not a valid {kind}.") from error
    if kind == "boolean":
        return text.lower() == "true"
    return text


# Characters XML 1.0 cannot carry at all (not even escaped): a parser refuses the whole answer.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` as an XML element can hold it: characters XML forbids (control characters, which a
    message may quote from a request) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _text(shape: Shape, value: Any) -> str:
    """A scalar as the XML parsers read it: ``true``/``false``, ISO 8601 times, base64 blobs."""
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(value, UTC)
        if isinstance(value, datetime):
            moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
            if moment.microsecond:
                return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(value)
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if kind in ("float", "double") and isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return str(value)


def _member_tag(shape: Shape, name: str) -> str:
    """The element a member is written as (botocore: ``_member_key_name``): a flattened list's items take
    their member's ``locationName``."""
    if isinstance(shape, ListShape) and shape.serialization.get("flattened"):
        item_name = shape.member.serialization.get("name")
        if item_name:
            return str(item_name)
    return str(shape.serialization.get("name", name))


def namespace(api: ServiceApi) -> str:
    """The service's XML namespace (``xmlNamespace`` in the model, with the slash AWS writes)."""
    model = api.service_model
    declared = model.metadata.get("xmlNamespace")
    if not declared:
        declared = f"https://{model.endpoint_prefix}.amazonaws.com/doc/{model.api_version}/"
    return declared if declared.endswith("/") else declared + "/"


def _headers(request_id: str) -> dict[str, str]:
    return {"content-type": CONTENT_TYPE, "x-amzn-RequestId": request_id}
