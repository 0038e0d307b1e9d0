"""botocore's ``lambda`` service model, and the route table built from its ``requestUri``s."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel

# Where AWS answers differently from the model's responseCode.
STATUS_OVERRIDES = {"DeleteFunction": 204}


@cache
def lambda_model() -> ServiceModel:
    """The Lambda service model shipped with botocore."""
    return botocore.session.get_session().get_service_model("lambda")


@dataclass(frozen=True)
class Route:
    """One operation's method, path pattern and required query parameters."""

    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    required_query: tuple[tuple[str, str | None], ...]
    literal_length: int

    def match(self, method: str, raw_path: str, query: dict[str, list[str]]) -> dict[str, str] | None:
        """Decoded URI parameters if this route serves the request, else None."""
        if method != self.method:
            return None
        matched = self.pattern.fullmatch(raw_path.rstrip("/") or "/")
        if matched is None:
            return None
        for key, value in self.required_query:
            if key not in query or (value is not None and value not in query[key]):
                return None
        return {name: unquote(value) for name, value in matched.groupdict().items()}


def _compile(operation: OperationModel) -> Route:
    uri = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    pattern = ""
    literal_length = 0
    for part in re.split(r"(\{[^}]+\})", path.rstrip("/") or "/"):
        if part.startswith("{"):
            label = part[1:-1]
            greedy = label.endswith("+")
            label = label.rstrip("+")
            pattern += f"(?P<{label}>.+)" if greedy else f"(?P<{label}>[^/]+)"
        else:
            pattern += re.escape(part)
            literal_length += len(part)
    required: list[tuple[str, str | None]] = []
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        required.append((key, value or None))
    return Route(operation, operation.http["method"], re.compile(pattern), tuple(required), literal_length)


@cache
def routes() -> tuple[Route, ...]:
    """Every operation's route, most specific first (so that literal paths beat labels)."""
    model = lambda_model()
    compiled = [_compile(model.operation_model(name)) for name in model.operation_names]
    compiled.sort(key=lambda route: (len(route.required_query), route.literal_length), reverse=True)
    return tuple(compiled)


def find_route(
    method: str, raw_path: str, query: dict[str, list[str]]
) -> tuple[Route, dict[str, str]] | None:
    """The route serving a request and its URI parameters, or None."""
    for route in routes():
        params = route.match(method, raw_path, query)
        if params is not None:
            return route, params
    return None


def success_status(operation: OperationModel) -> int:
    """The HTTP status of a successful answer."""
    return int(STATUS_OVERRIDES.get(operation.name, operation.http.get("responseCode", 200)))
