"""Function URLs end to end: Create/Get/Update/Delete/ListFunctionUrlConfigs with AWS's answers, and the
URLs served for real over plain HTTP (httpx): by host name and by path, payload format 2.0 events,
AWS's response rules, CORS, AWS_IAM and function errors."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import pytest

from tests.e2e.invoke_support import deploy_python, log_messages, server_fixture, unique
from tests.recordings import differences, recorded
from tests.support import Server, create_function

pytestmark = pytest.mark.e2e
server = server_fixture()
API = "test_lambda_api.snapshot.json"
LAMBDA = "test_lambda.snapshot.json"
ARN = "arn:aws:lambda:us-east-1:000000000000:function"
URL = re.compile(r"^http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/$")

# One function drives the serving tests: / and /echo return the event it got (as a JSON body), /fail raises,
# anything else returns the request's body, parsed as JSON, as its result.
HANDLER = """
import base64, json

def handler(event, context):
    path = event["rawPath"]
    if path == "/" or path.startswith("/echo"):
        return {"statusCode": 200, "body": json.dumps({"event": event, "requestId": context.aws_request_id})}
    if path == "/fail":
        raise RuntimeError("the function failed")
    body = event.get("body") or "null"
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
"""


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def status_of(excinfo: Any) -> int:
    return int(excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"])


def error_of(excinfo: Any) -> dict[str, Any]:
    return dict(excinfo.value.response["Error"])


def same_as_recording(answer: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences from AWS's answer; the URL itself is lambdad's own (checked on its own)."""
    answer, expected = strip(answer), strip(expected)
    assert URL.match(answer.pop("FunctionUrl")), answer
    expected.pop("FunctionUrl", None)
    return differences(answer, expected)


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


@pytest.fixture
def unvalidated(server: Server) -> Any:
    return server.client(parameter_validation=False)


@pytest.fixture(scope="module")
def echo(server: Server) -> str:
    """The serving tests' function (see HANDLER)."""
    name = unique("url-echo")
    deploy_python(server.client(), name, HANDLER)
    return name


def public(client: Any, name: str, qualifier: str | None = None) -> None:
    """AWS's statement that lets anyone call a NONE URL (AWS refuses the URL without it)."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    client.add_permission(
        FunctionName=name,
        StatementId="urlPermission",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
        **extra,
    )


def url_id(config: dict[str, Any]) -> str:
    match = URL.match(config["FunctionUrl"])
    assert match, config["FunctionUrl"]
    return match.group(1)


def by_host(server: Server, config: dict[str, Any]) -> httpx.Client:
    """A client calling the URL by host name (sent to 127.0.0.1 with the URL's Host header)."""
    host = f"{url_id(config)}.lambda-url.us-east-1.localhost:{server.port}"
    return httpx.Client(base_url=server.endpoint, headers={"Host": host}, timeout=60)


def by_path(server: Server, config: dict[str, Any]) -> httpx.Client:
    """A client calling the URL by lambdad's path form."""
    return httpx.Client(base_url=f"{server.endpoint}/_lambdad/urls/{url_id(config)}", timeout=60)


# --- configuration ------------------------------------------------------------------------------------


def test_url_config_lifecycle_matches_aws(client: Any, server: Server) -> None:
    name = unique("url-life")
    create_function(client, name)
    test = "TestLambdaUrl::test_url_config_lifecycle"

    created = client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert same_as_recording(dict(created), recorded(API, test, "url_creation")) == []
    assert int(URL.match(created["FunctionUrl"]).group(2)) == server.port  # type: ignore[union-attr]

    with pytest.raises(client.exceptions.ResourceConflictException) as excinfo:
        client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert status_of(excinfo) == 409
    assert differences(error_of(excinfo), recorded(API, test, "failed_duplication")["Error"]) == []

    got = client.get_function_url_config(FunctionName=name)
    assert same_as_recording(dict(got), recorded(API, test, "get_url_config")) == []
    assert got["FunctionUrl"] == created["FunctionUrl"]

    updated = client.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert same_as_recording(dict(updated), recorded(API, test, "updated_url_config")) == []
    assert updated["FunctionUrl"] == created["FunctionUrl"]  # the URL never changes
    assert updated["LastModifiedTime"] >= got["LastModifiedTime"]

    deleted = client.delete_function_url_config(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_function_url_config(FunctionName=name)
    assert differences(error_of(excinfo), recorded(API, test, "failed_getter")["Error"]) == []


def test_url_config_errors_match_aws(client: Any, unvalidated: Any) -> None:
    name = unique("url-errors")
    create_function(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="urlalias", FunctionVersion="1")
    missing = unique("url-missing")
    test = "TestLambdaUrl::test_url_config_exceptions"

    def call(operation: str, **params: Any) -> dict[str, Any]:
        if operation in ("create", "update"):
            params.setdefault("AuthType", "NONE")
        method = getattr(unvalidated, f"{operation}_function_url_config")
        with pytest.raises(unvalidated.exceptions.ClientError) as excinfo:
            method(**params)
        return {**excinfo.value.response, "ResponseMetadata": {}}

    for operation in ("create", "get", "delete", "update"):
        cases = {
            "name_doesnotexist": {"FunctionName": missing},
            "arn_doesnotexist": {"FunctionName": f"{ARN}:{missing}"},
            "name_doesnotexist_qualifier": {"FunctionName": missing, "Qualifier": "1"},
            "qualifier_version": {"FunctionName": name, "Qualifier": "1"},
            "qualifier_version_doesnotexist": {"FunctionName": name, "Qualifier": "2"},
            "qualifier_alias_doesnotexist": {"FunctionName": name, "Qualifier": "nosuchalias"},
            "qualifier_alias_doesnotmatch_arn": {
                "FunctionName": f"{ARN}:{name}:urlalias",
                "Qualifier": "other",
            },
            "qualifier_latest": {"FunctionName": name, "Qualifier": "$LATEST"},
        }
        if operation != "create":
            cases["config_doesnotexist"] = {"FunctionName": name}
        for case, params in cases.items():
            expected = recorded(API, test, f"{operation}_function_url_config_{case}")
            if expected == "<aws_internal_failure>":
                continue  # AWS failed here itself; lambdad answers as create/get/update do
            answer = call(operation, **params)
            wanted = {k: v for k, v in expected.items() if k != "ResponseMetadata"}
            got = {k: v for k, v in answer.items() if k in wanted}
            assert differences(got, wanted) == [], (operation, case)
            assert answer["Error"]["Code"] == expected["Error"]["Code"]


def test_list_and_alias_urls_match_aws(client: Any) -> None:
    name = unique("url-list")
    create_function(client, name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="urlalias", FunctionVersion="1")
    test = "TestLambdaUrl::test_url_config_list_paging"

    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.list_function_url_configs(FunctionName=unique("url-missing"))
    assert differences(error_of(excinfo), recorded(API, test, "list_function_notfound")["Error"]) == []
    assert strip(client.list_function_url_configs(FunctionName=name)) == {"FunctionUrlConfigs": []}

    own = client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert same_as_recording(dict(own), recorded(API, test, "url_config_fn")) == []
    aliased = client.create_function_url_config(FunctionName=name, Qualifier="urlalias", AuthType="NONE")
    assert same_as_recording(dict(aliased), recorded(API, test, "url_config_alias")) == []
    assert own["FunctionUrl"] != aliased["FunctionUrl"]

    listed = client.list_function_url_configs(FunctionName=name)
    expected = recorded(API, test, "list_all")["FunctionUrlConfigs"]
    assert len(listed["FunctionUrlConfigs"]) == len(expected)
    for actual, wanted in zip(listed["FunctionUrlConfigs"], expected, strict=True):
        assert same_as_recording(dict(actual), wanted) == []
    assert "NextMarker" not in listed

    first = client.list_function_url_configs(FunctionName=name, MaxItems=1)
    assert [c["FunctionArn"] for c in first["FunctionUrlConfigs"]] == [f"{ARN}:{name}"]
    rest = client.list_function_url_configs(FunctionName=name, Marker=first["NextMarker"])
    assert [c["FunctionArn"] for c in rest["FunctionUrlConfigs"]] == [f"{ARN}:{name}:urlalias"]

    # Deleting the function's own URL leaves the alias's (AWS's recording of exactly that).
    test = "TestLambdaUrl::test_url_config_deletion_without_qualifier"
    client.delete_function_url_config(FunctionName=name)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_url_config(FunctionName=name)
    kept = client.get_function_url_config(FunctionName=name, Qualifier="urlalias")
    expected_kept = recorded(API, test, "get_url_config_with_alias_after_deletion")
    expected_kept = {
        **expected_kept,
        "FunctionArn": expected_kept["FunctionArn"].replace("test-alias", "urlalias"),
    }
    assert same_as_recording(dict(kept), expected_kept) == []
    # A qualified ARN names the alias as the Qualifier would.
    assert (
        client.get_function_url_config(FunctionName=f"{ARN}:{name}:urlalias")["FunctionUrl"]
        == (aliased["FunctionUrl"])
    )


def test_invoke_mode_and_cors_are_stored_as_aws_answers(client: Any, unvalidated: Any) -> None:
    name = unique("url-mode")
    create_function(client, name)
    test = "TestLambdaURL::test_lambda_update_function_url_config"

    with pytest.raises(unvalidated.exceptions.ClientError) as excinfo:
        unvalidated.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode="UNKNOWN")
    expected = recorded(
        LAMBDA, "TestLambdaURL::test_lambda_url_invalid_invoke_mode", "invoke_function_invalid_invoke_type"
    )
    assert differences(error_of(excinfo), expected["Error"]) == []

    created = client.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode="BUFFERED")
    assert same_as_recording(dict(created), recorded(LAMBDA, test, "create_lambda_url_config")) == []
    got = client.get_function_url_config(FunctionName=name)
    assert same_as_recording(dict(got), recorded(LAMBDA, test, "get_url_config")) == []
    streamed = client.update_function_url_config(FunctionName=name, InvokeMode="RESPONSE_STREAM")
    assert same_as_recording(dict(streamed), recorded(LAMBDA, test, "modify_lambda_url_config")) == []
    unchanged = client.update_function_url_config(FunctionName=name)
    assert same_as_recording(dict(unchanged), recorded(LAMBDA, test, "modify_lambda_url_config_none")) == []
    got = client.get_function_url_config(FunctionName=name)
    assert same_as_recording(dict(got), recorded(LAMBDA, test, "get_url_config_3")) == []

    cors = {
        "AllowCredentials": True,
        "AllowHeaders": ["x-custom"],
        "AllowMethods": ["GET", "POST"],
        "AllowOrigins": ["https://example.com"],
        "ExposeHeaders": ["x-out"],
        "MaxAge": 300,
    }
    with_cors = client.update_function_url_config(FunctionName=name, Cors=cors)
    assert with_cors["Cors"] == cors
    assert client.get_function_url_config(FunctionName=name)["Cors"] == cors
    assert client.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")["Cors"] == cors


def test_deleting_the_function_removes_its_urls(client: Any, server: Server) -> None:
    name = unique("url-gone")
    create_function(client, name)
    config = client.create_function_url_config(FunctionName=name, AuthType="NONE")
    client.delete_function(FunctionName=name)
    create_function(client, name)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_url_config(FunctionName=name)
    assert strip(client.list_function_url_configs(FunctionName=name)) == {"FunctionUrlConfigs": []}
    answer = by_host(server, config).get("/")
    assert answer.status_code == 403
    assert answer.text == '{"Message":null}'


def test_wrong_region_is_refused_as_aws_does(server: Server) -> None:
    with pytest.raises(Exception) as excinfo:
        server.client(region="eu-west-1").get_function_url_config(FunctionName=f"{ARN}:anything")
    expected = recorded(
        API,
        "TestLambdaFunction::test_get_function_wrong_region[get_function_url_config]",
        "wrong_region_exception",
    )
    assert differences(error_of(excinfo), expected["Error"]) == []


# --- serving --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_url(server: Server, echo: str) -> dict[str, Any]:
    config = dict(server.client().create_function_url_config(FunctionName=echo, AuthType="NONE"))
    public(server.client(), echo)
    return config


def test_none_url_needs_a_public_policy_statement(server: Server) -> None:
    client = server.client()
    name = unique("url-private")
    deploy_python(client, name, HANDLER)
    config = client.create_function_url_config(FunctionName=name, AuthType="NONE")
    with by_host(server, config) as http:
        refused = http.post("/echo", content="text", headers={"Content-Type": "text/plain"})
        assert refused.status_code == 403
        assert refused.headers["x-amzn-ErrorType"] == "AccessDeniedException"
        expected = recorded(
            LAMBDA,
            "TestLambdaPermissions::test_lambda_permission_url_invocation",
            "lambda_url_invocation_missing_permission",
        )
        assert differences(refused.json(), expected) == []
        public(client, name)
        allowed = http.post("/echo", content="text", headers={"Content-Type": "text/plain"})
        assert allowed.status_code == 200
        assert allowed.json()["event"]["body"] == "text"


def test_get_by_host_name_becomes_a_payload_2_0_event(server: Server, echo_url: dict[str, Any]) -> None:
    with by_host(server, echo_url) as http:
        answer = http.get(
            "/echo/a%2Fb/c",
            params=[("x", "1"), ("x", "2"), ("empty", ""), ("sp", "a b")],
            headers={
                "Cookie": "first=1; second=two",
                "X-Custom-Header": "Mixed Case",
                "User-Agent": "tests/1",
            },
        )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    echoed = answer.json()
    event = echoed["event"]
    uid = url_id(echo_url)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/echo/a%2Fb/c"
    assert event["rawQueryString"] == "x=1&x=2&empty=&sp=a+b"
    assert event["queryStringParameters"] == {"x": "1,2", "empty": "", "sp": "a b"}
    assert event["cookies"] == ["first=1", "second=two"]
    headers = event["headers"]
    assert all(name == name.lower() for name in headers)
    assert headers["x-custom-header"] == "Mixed Case"
    assert headers["host"] == f"{uid}.lambda-url.us-east-1.localhost:{server.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert "cookie" not in headers
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["apiId"] == uid
    assert context["domainPrefix"] == uid
    assert context["domainName"] == f"{uid}.lambda-url.us-east-1.localhost"
    assert context["http"] == {
        "method": "GET",
        "path": "/echo/a%2Fb/c",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests/1",
    }
    assert context["routeKey"] == "$default"
    assert context["stage"] == "$default"
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", context["time"])
    assert isinstance(context["timeEpoch"], int)
    # One request id: the response header, the event's and the function's context's.
    assert context["requestId"] == echoed["requestId"] == answer.headers["x-amzn-RequestId"]


def test_path_form_and_bodies(server: Server, echo_url: dict[str, Any]) -> None:
    with by_path(server, echo_url) as http:
        text = http.post("/echo", json={"key": "value"}).json()["event"]
        assert text["rawPath"] == "/echo"
        assert text["isBase64Encoded"] is False
        assert json.loads(text["body"]) == {"key": "value"}
        assert text["requestContext"]["http"]["method"] == "POST"

        plain = http.post("/echo", content="text", headers={"Content-Type": "text/plain"}).json()["event"]
        assert (plain["body"], plain["isBase64Encoded"]) == ("text", False)

        binary = bytes(range(256))
        raw = http.put("/echo/bin", content=binary, headers={"Content-Type": "application/octet-stream"})
        event = raw.json()["event"]
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == binary

        root = http.get("").json()["event"]  # no path after the id: "/"
        assert root["rawPath"] == "/"


RESPONSES = {
    "dict": {"hello": "world"},
    "http-response": {"statusCode": 200, "body": "body123"},
    "http-response-json": {"statusCode": 200, "body": '{"hello": "world"}'},
    "list-mixed": ["hello", 3, True],
    "string": "hello",
    "integer": 3,
    "float": 3.1,
    "boolean": True,
}


@pytest.mark.parametrize("case", list(RESPONSES))
def test_results_become_responses_as_aws_renders_them(
    server: Server, echo_url: dict[str, Any], case: str
) -> None:
    with by_path(server, echo_url) as http:
        answer = http.post("/respond", json=RESPONSES[case])
    expected = recorded(LAMBDA, f"TestLambdaURL::test_lambda_url_invocation[{case}]", "lambda_url_invocation")
    content = answer.json() if isinstance(expected["content"], dict) else answer.text
    actual = {
        "statuscode": answer.status_code,
        "headers": {
            "Content-Type": answer.headers["content-type"],
            "Content-Length": answer.headers["content-length"],
        },
        "content": content,
    }
    assert differences(actual, expected) == []


def test_status_headers_cookies_and_binary_responses(server: Server, echo_url: dict[str, Any]) -> None:
    with by_host(server, echo_url) as http:
        answer = http.post(
            "/respond",
            json={
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "My-Custom-Header": "Custom Value"},
                "cookies": ["one=1; Max-Age=60", "two=2; Path=/"],
                "body": "created",
            },
        )
        assert answer.status_code == 201
        assert answer.text == "created"
        assert answer.headers["content-type"] == "text/plain"
        assert answer.headers["my-custom-header"] == "Custom Value"
        assert answer.headers.get_list("set-cookie") == ["one=1; Max-Age=60", "two=2; Path=/"]

        teapot = http.post("/respond", json={"statusCode": "418", "body": "i'm a teapot"})
        assert (teapot.status_code, teapot.text) == (418, "i'm a teapot")

        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        image = http.post(
            "/respond",
            json={
                "statusCode": 200,
                "headers": {"content-type": "image/png"},
                "body": base64.b64encode(png).decode(),
                "isBase64Encoded": True,
            },
        )
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert image.content == png

        empty = http.post("/respond", json={"statusCode": 204})
        assert (empty.status_code, empty.content) == (204, b"")


def test_function_error_is_a_502(server: Server, echo_url: dict[str, Any]) -> None:
    with by_path(server, echo_url) as http:
        answer = http.post("/fail", content=b"{}")
    assert answer.status_code == 502
    assert answer.text == "Internal Server Error"
    with by_path(server, echo_url) as http:
        not_a_response = http.post("/respond", json={"statusCode": "not a number"})
    assert not_a_response.status_code == 502


def test_unknown_url_is_refused_as_aws_does(server: Server) -> None:
    unknown = {"FunctionUrl": f"http://{'0' * 32}.lambda-url.us-east-1.localhost:{server.port}/"}
    for http in (by_host(server, unknown), by_path(server, unknown)):
        with http:
            answer = http.get("/")
        assert answer.status_code == 403
        assert answer.text == '{"Message":null}'
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-amzn-ErrorType"] == "AccessDeniedException"


def test_cors_preflight_and_response_headers(server: Server, echo: str) -> None:
    client = server.client()
    client.create_alias(FunctionName=echo, Name="cors", FunctionVersion="$LATEST")
    config = client.create_function_url_config(
        FunctionName=echo,
        Qualifier="cors",
        AuthType="NONE",
        Cors={
            "AllowOrigins": ["https://example.com"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-custom"],
            "ExposeHeaders": ["x-out"],
            "MaxAge": 300,
            "AllowCredentials": True,
        },
    )
    public(client, echo, "cors")
    with by_host(server, config) as http:
        preflight = http.options(
            "/echo",
            headers={
                "Origin": "https://example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-custom",
            },
        )
        assert preflight.status_code == 200
        assert preflight.content == b""  # answered from the configuration: the function did not run
        assert preflight.headers["access-control-allow-origin"] == "https://example.com"
        assert preflight.headers["access-control-allow-methods"] == "GET,POST"
        assert preflight.headers["access-control-allow-headers"] == "x-custom"
        assert preflight.headers["access-control-max-age"] == "300"
        assert preflight.headers["access-control-allow-credentials"] == "true"

        answer = http.get("/echo", headers={"Origin": "https://example.com"})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://example.com"
        assert answer.headers["access-control-expose-headers"] == "x-out"
        assert answer.headers["access-control-allow-credentials"] == "true"

        stranger = http.get("/echo", headers={"Origin": "https://elsewhere.example"})
        assert stranger.status_code == 200
        assert "access-control-allow-origin" not in stranger.headers

        # Through an alias the function runs as the alias.
        assert answer.json()["event"]["requestContext"]["apiId"] == url_id(config)


@pytest.fixture(scope="module")
def unauthenticated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with ``--auth none`` (this module's others sign)."""
    running = Server(tmp_path_factory.mktemp("lambdad") / "data", auth=False).start(timeout=60)
    yield running
    running.stop(timeout=60)


def test_aws_iam_refuses_every_request_until_signatures_are_verified(unauthenticated: Server) -> None:
    """With authentication off (no identity store to verify against): unsigned, looking signed (a bare
    scheme, a presigned query with any signature) or signed with any credentials, all answer AWS's 403
    Forbidden, and the function never runs (``test_function_url_iam.py``: with ``--auth sigv4``)."""
    server = unauthenticated
    client = server.client()
    name = unique("iam-url")
    deploy_python(client, name, HANDLER)
    config = client.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    target = f"{server.endpoint}/_lambdad/urls/{url_id(config)}/echo"
    request = botocore.awsrequest.AWSRequest(method="GET", url=target)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "lambda", "us-east-1").add_auth(
        request
    )
    attempts = {
        "unsigned": {},
        "bare scheme": {"headers": {"Authorization": "AWS4-HMAC-SHA256 x"}},
        "presigned query": {"params": {"X-Amz-Signature": "x"}},
        "signed by an unknown key": {"headers": dict(request.headers.items())},
    }
    with by_path(server, config) as http:
        for attempt, options in attempts.items():
            refused = http.get("/echo", **options)
            assert refused.status_code == 403, attempt
            assert refused.headers["x-amzn-ErrorType"] == "AccessDeniedException", attempt
            assert refused.json() == {
                "Message": "Forbidden. For troubleshooting Function URL authorization issues, see: "
                "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
            }, attempt
    assert log_messages(server, name) == []


def test_alias_url_outlives_its_alias_and_response_stream_is_buffered(server: Server, echo: str) -> None:
    client = server.client()
    client.create_alias(FunctionName=echo, Name="brief", FunctionVersion="$LATEST")
    config = client.create_function_url_config(
        FunctionName=echo, Qualifier="brief", AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )
    public(client, echo, "brief")
    with by_host(server, config) as http:
        # RESPONSE_STREAM is served buffered for now: the same answer, sent once the function is done.
        assert http.get("/respond", params={"q": 1}).status_code == 200
        client.delete_alias(FunctionName=echo, Name="brief")
        gone = http.get("/echo")
    expected = recorded(
        LAMBDA,
        "TestLambdaURL::test_lambda_url_persists_after_alias_delete",
        "invoke_deleted_alias_url_response_delayed",
    )
    assert gone.status_code == expected["status_code"]
    assert gone.json() == expected["content"]
    assert gone.headers["x-amzn-ErrorType"] == expected["headers"]["x-amzn-ErrorType"]
    assert (
        client.get_function_url_config(FunctionName=echo, Qualifier="brief")["FunctionUrl"]
        == config["FunctionUrl"]
    )
