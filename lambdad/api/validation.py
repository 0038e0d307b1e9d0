"""Checking parameters against the service model, with AWS's ValidationException wording.

"1 validation error detected: Value '100' at 'memorySize' failed to satisfy constraint: Member must have
value greater than or equal to 128"
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from botocore.model import Shape, StructureShape

from lambdad.errors import ValidationException

# Where AWS enforces tighter bounds than the model carries (the model also covers capacity-provider
# functions, with larger ones), or validates a member itself with a different error.
_BOUND_OVERRIDES: dict[str, dict[str, int]] = {
    "MemorySize": {"max": 10_240},
    "Timeout": {"max": 900},
}
_NO_ENUM_CHECK = frozenset({"Runtime"})  # AWS answers InvalidParameterValueException (services check it)
# Where AWS lists an enum's values in another order than the model (its recorded answers show).
# Patterns AWS quotes without the model's outermost group (its recorded answers show).
_UNWRAPPED_PATTERNS = frozenset({"LayerVersionArn"})
_ENUM_ORDER = {
    "InvokeMode": ["RESPONSE_STREAM", "BUFFERED"],
    "RecursiveLoop": ["Terminate", "Allow"],
    "EventSourcePosition": ["LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"],
}


def validate(shape: StructureShape | None, params: dict[str, Any]) -> None:
    """Raise ValidationException listing every constraint ``params`` breaks."""
    if shape is None:
        return
    problems: list[str] = []
    _check_structure(shape, params, "", problems)
    if problems:
        raise ValidationException.from_messages(problems)


def _path(parent: str, name: str) -> str:
    name = name[:1].lower() + name[1:]
    return f"{parent}.{name}" if parent else name


def _check_structure(shape: StructureShape, value: dict[str, Any], path: str, problems: list[str]) -> None:
    for name, member in shape.members.items():
        member_path = _path(path, member.serialization.get("name", name) if _is_query(member) else name)
        if value.get(name) is None:
            if name in shape.required_members:
                problems.append(
                    f"Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                )
            continue
        _check(member, value[name], member_path, problems)


def _is_query(member: Shape) -> bool:
    return member.serialization.get("location") == "querystring"


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    broken = constraints_broken(shape, value)
    if broken:
        shown = "" if shape.metadata.get("sensitive") else f" {_show(value, shape)}"
        problems.extend(f"Value{shown} at '{path}' failed to satisfy constraint: {rule}" for rule in broken)
        return
    if isinstance(shape, StructureShape):
        _check_structure(shape, value, path, problems)


def constraints_broken(shape: Shape, value: Any) -> list[str]:
    """AWS's "Member must ..." phrases for each constraint ``value`` breaks."""
    rules: list[str] = []
    bounds = {**shape.metadata, **_BOUND_OVERRIDES.get(shape.name, {})}
    kind = shape.type_name
    if kind in ("string", "blob", "list", "map"):
        size = len(value)
        if "min" in bounds and size < bounds["min"]:
            rules.append(f"Member must have length greater than or equal to {bounds['min']}")
        if "max" in bounds and size > bounds["max"]:
            rules.append(f"Member must have length less than or equal to {bounds['max']}")
    elif kind in ("integer", "long", "float", "double"):
        if "min" in bounds and value < bounds["min"]:
            rules.append(f"Member must have value greater than or equal to {bounds['min']}")
        if "max" in bounds and value > bounds["max"]:
            rules.append(f"Member must have value less than or equal to {bounds['max']}")
    if kind == "string":
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            rules.append(f"Member must satisfy regular expression pattern: {_shown_pattern(shape)}")
        enum = shape.metadata.get("enum")
        if enum and shape.name not in _NO_ENUM_CHECK and value not in enum:
            rules.append(
                f"Member must satisfy enum value set: [{', '.join(_ENUM_ORDER.get(shape.name, enum))}]"
            )
    elif kind == "list":
        element = shape.member  # type: ignore[attr-defined]
        if any(item is None or constraints_broken(element, item) for item in value):
            rules.append(f"Member must satisfy constraint: [{', '.join(_element_rules(element))}]")
    elif kind == "map":
        key_shape, value_shape = shape.key, shape.value  # type: ignore[attr-defined]
        if any(constraints_broken(key_shape, k) for k in value):
            rules.append(f"Map keys must satisfy constraint: [{', '.join(_element_rules(key_shape, False))}]")
        if any(v is None or constraints_broken(value_shape, v) for v in value.values()):
            rules.append(f"Map value must satisfy constraint: [{', '.join(_element_rules(value_shape))}]")
    return rules


def _element_rules(shape: Shape, not_null: bool = True) -> list[str]:
    """Every constraint an element shape carries, as AWS lists them for a collection."""
    rules = []
    bounds = shape.metadata
    # AWS lists the upper bound before the lower one here (its recorded answers show).
    if shape.type_name == "string":
        if "max" in bounds:
            rules.append(f"Member must have length less than or equal to {bounds['max']}")
        if "min" in bounds:
            rules.append(f"Member must have length greater than or equal to {bounds['min']}")
        if "pattern" in bounds:
            rules.append(f"Member must satisfy regular expression pattern: {_shown_pattern(shape)}")
        if shape.metadata.get("enum"):
            rules.append(f"Member must satisfy enum value set: [{', '.join(shape.metadata['enum'])}]")
    elif shape.type_name in ("integer", "long", "float", "double"):
        if "max" in bounds:
            rules.append(f"Member must have value less than or equal to {bounds['max']}")
        if "min" in bounds:
            rules.append(f"Member must have value greater than or equal to {bounds['min']}")
    if not_null:
        rules.append("Member must not be null")
    return rules


def _shown_pattern(shape: Shape) -> str:
    pattern: str = shape.metadata["pattern"]
    if shape.name in _UNWRAPPED_PATTERNS and pattern.startswith("(") and pattern.endswith(")"):
        return pattern[1:-1]
    return pattern


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None  # a Java-only construct: AWS checks it, we cannot, and we will not guess


def _matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


def _show(value: Any, shape: Shape | None = None) -> str:
    """A value as AWS quotes it: 'text', '100', '[a, b]', '{k=v}' (a map of doubles: '{k=2.0}')."""
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, list):
        return "'[" + ", ".join(_bare(v) for v in value) + "]'"
    if isinstance(value, dict):
        doubles = shape is not None and shape.type_name == "map" and shape.value.type_name == "double"  # type: ignore[attr-defined]
        shown = {k: float(v) if doubles and isinstance(v, int | float) else v for k, v in value.items()}
        return "'{" + ", ".join(f"{k}={_bare(v)}" for k, v in shown.items()) + "}'"
    if isinstance(value, bytes | bytearray):
        return "'java.nio.HeapByteBuffer'"
    return f"'{value}'"


def _bare(value: Any) -> str:
    return "null" if value is None else str(value)
