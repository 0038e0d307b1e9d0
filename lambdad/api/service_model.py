"""botocore's service models (``lambda``, ``scheduler``), and each one's route table built from its
operations' ``requestUri``s. One server serves several services: their paths do not overlap (Lambda's
start with a date, ``/2015-03-31/...``; the scheduler's with ``/schedules``, ``/schedule-groups`` and
``/tags``), and a test keeps it so."""

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
def service_model(name: str) -> ServiceModel:
    """A service model shipped with botocore (``lambda``, ``scheduler``)."""
    return botocore.session.get_session().get_service_model(name)


def lambda_model() -> ServiceModel:
    """The Lambda service model shipped with botocore."""
    return service_model("lambda")


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
def routes(service: str = "lambda") -> tuple[Route, ...]:
    """Every operation's route in one service, most specific first (so that literal paths beat labels)."""
    model = service_model(service)
    compiled = [_compile(model.operation_model(name)) for name in model.operation_names]
    compiled.sort(key=lambda route: (len(route.required_query), route.literal_length), reverse=True)
    return tuple(compiled)


def find_route(
    method: str, raw_path: str, query: dict[str, list[str]], service: str = "lambda"
) -> tuple[Route, dict[str, str]] | None:
    """The route of ``service`` serving a request and its URI parameters, or None."""
    for route in routes(service):
        params = route.match(method, raw_path, query)
        if params is not None:
            return route, params
    return None


def success_status(operation: OperationModel) -> int:
    """The HTTP status of a successful answer."""
    return int(STATUS_OVERRIDES.get(operation.name, operation.http.get("responseCode", 200)))
