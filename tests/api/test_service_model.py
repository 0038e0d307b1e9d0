"""Routing built from the model's requestUris."""

from __future__ import annotations

import re

import pytest

from lambdad.api.service_model import find_route, lambda_model, service_model, success_status


def concrete_path(uri: str) -> tuple[str, dict[str, list[str]]]:
    path, _, query = uri.partition("?")
    path = re.sub(r"\{[^}]+\}", "sample%3Avalue", path)
    params: dict[str, list[str]] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        params[key] = [value or "x"]
    return path, params


@pytest.mark.parametrize("name", lambda_model().operation_names)
def test_every_operation_routes_to_itself(name: str) -> None:
    operation = lambda_model().operation_model(name)
    path, query = concrete_path(operation.http["requestUri"])
    found = find_route(operation.http["method"], path, query)
    assert found is not None
    assert found[0].operation.name == name


def test_uri_labels_are_percent_decoded() -> None:
    found = find_route("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af", {})
    assert found is not None
    route, params = found
    assert route.operation.name == "GetFunction"
    assert params == {"FunctionName": "arn:aws:lambda:us-east-1:1:function:f"}


def test_literal_paths_win_over_labels() -> None:
    found = find_route("GET", "/2015-03-31/functions/f/configuration", {})
    assert found is not None and found[0].operation.name == "GetFunctionConfiguration"


def test_trailing_slash_is_ignored() -> None:
    found = find_route("GET", "/2015-03-31/functions/", {})
    assert found is not None and found[0].operation.name == "ListFunctions"


def test_unknown_method_or_path_finds_nothing() -> None:
    assert find_route("PATCH", "/2015-03-31/functions", {}) is None
    assert find_route("GET", "/nothing/here", {}) is None


def test_delete_function_answers_204_as_aws_does() -> None:
    assert success_status(lambda_model().operation_model("DeleteFunction")) == 204
    assert success_status(lambda_model().operation_model("CreateFunction")) == 201


@pytest.mark.parametrize("name", service_model("scheduler").operation_names)
def test_every_scheduler_operation_routes_to_itself(name: str) -> None:
    operation = service_model("scheduler").operation_model(name)
    path, query = concrete_path(operation.http["requestUri"])
    found = find_route(operation.http["method"], path, query, "scheduler")
    assert found is not None
    assert found[0].operation.name == name


@pytest.mark.parametrize(("one", "other"), [("lambda", "scheduler"), ("scheduler", "lambda")])
def test_services_on_one_server_never_claim_each_others_paths(one: str, other: str) -> None:
    for name in service_model(one).operation_names:
        operation = service_model(one).operation_model(name)
        path, query = concrete_path(operation.http["requestUri"])
        assert find_route(operation.http["method"], path, query, other) is None, name
