"""The Runtime API over real HTTP on 127.0.0.1: AWS's status codes, headers and error documents."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest

from lambdad.runtime_api import (
    MAX_PAYLOAD_SIZE,
    ChannelBusy,
    ChannelClosed,
    Invocation,
    ResultKind,
    RuntimeApiServer,
    RuntimeChannel,
)

from .conftest import BASE, Api, error_of, request

ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"
ACCEPTED = {"status": "OK"}


def invocation(request_id: str = "req-1", payload: bytes = b'{"k":"v"}', **kw: str) -> Invocation:
    return Invocation(request_id, payload, 1_900_000_000_000, ARN, **kw)


def test_next_renders_the_event_with_aws_headers_and_the_response_completes_the_invoke(api: Api) -> None:
    pending = api.submit(
        api.channel.invoke(
            invocation(trace_id="Root=1-abc;Sampled=1", client_context='{"c":1}', cognito_identity='{"i":2}')
        )
    )
    conn = api.connect()
    status, headers, body = request(conn, "GET", "/invocation/next")
    assert status == 200
    assert body == b'{"k":"v"}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN
    assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-abc;Sampled=1"
    assert headers["Lambda-Runtime-Client-Context"] == '{"c":1}'
    assert headers["Lambda-Runtime-Cognito-Identity"] == '{"i":2}'
    assert headers["Content-Type"] == "application/json"
    sock = conn.sock
    status, _, body = request(conn, "POST", "/invocation/req-1/response", b'"done"')
    assert (status, json.loads(body)) == (202, ACCEPTED)
    assert conn.sock is sock, "the connection is kept alive"
    result = pending.result(5)
    assert (result.kind, result.payload, result.content_type) == (ResultKind.SUCCESS, b'"done"', None)


def test_optional_event_headers_are_absent_when_unset(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    _, headers, _ = request(api.connect(), "GET", "/invocation/next")
    for name in (
        "Lambda-Runtime-Trace-Id",
        "Lambda-Runtime-Client-Context",
        "Lambda-Runtime-Cognito-Identity",
    ):
        assert name not in headers


def test_the_first_next_ends_init(api: Api) -> None:
    waiting = api.submit(api.channel.wait_ready())
    time.sleep(0.05)
    assert not waiting.done()
    api.submit(api.channel.invoke(invocation()))
    request(api.connect(), "GET", "/invocation/next")
    assert waiting.result(5) is None


def test_next_long_polls_until_an_invocation_is_put(api: Api) -> None:
    conn = api.connect()
    conn.request("GET", BASE + "/invocation/next")
    time.sleep(0.1)
    api.submit(api.channel.invoke(invocation("late")))
    response = conn.getresponse()
    assert response.headers["Lambda-Runtime-Aws-Request-Id"] == "late"


def test_a_response_for_an_unknown_request_id_is_400_invalid_request_id(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    request(conn, "GET", "/invocation/next")
    status, _, body = request(conn, "POST", "/invocation/someone-else/response", b"{}")
    assert status == 400
    assert error_of(body) == ("InvalidRequestID", "Invalid request ID")
    status, _, _ = request(conn, "POST", "/invocation/req-1/response", b"{}")
    assert status == 202, "the refusal left the invocation and the connection usable"


def test_a_response_before_next_is_403_invalid_state_transition_from_started(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    time.sleep(0.05)
    status, _, body = request(api.connect(), "POST", "/invocation/req-1/response", b"{}")
    assert status == 403
    assert error_of(body) == (
        "InvalidStateTransition",
        "State transition from Started to InvocationResponse failed for runtime. "
        "Error: State transition is not allowed",
    )


def test_a_second_response_for_the_same_id_is_403_from_response_sent(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    request(conn, "GET", "/invocation/next")
    assert request(conn, "POST", "/invocation/req-1/response", b"1")[0] == 202
    status, _, body = request(conn, "POST", "/invocation/req-1/error", b"{}")
    assert status == 403
    assert error_of(body)[1].startswith(
        "State transition from RuntimeResponseSentState to InvocationErrorResponse"
    )


def test_next_while_an_invocation_is_outstanding_renders_the_same_event_again(api: Api) -> None:
    pending = api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    first = request(conn, "GET", "/invocation/next")
    again = request(conn, "GET", "/invocation/next")
    assert first[1]["Lambda-Runtime-Aws-Request-Id"] == again[1]["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert again[2] == first[2]
    request(conn, "POST", "/invocation/req-1/response", b"1")
    assert pending.result(5).payload == b"1"


def test_an_error_post_becomes_a_function_error_with_its_type_header_and_body(api: Api) -> None:
    pending = api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    request(conn, "GET", "/invocation/next")
    doc = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["  File x, line 1"]}
    status, _, body = request(
        conn,
        "POST",
        "/invocation/req-1/error",
        json.dumps(doc).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Unhandled", "Content-Type": "application/json"},
    )
    assert (status, json.loads(body)) == (202, ACCEPTED)
    result = pending.result(5)
    assert result.kind is ResultKind.FUNCTION_ERROR
    assert result.error_type == "Unhandled"
    assert json.loads(result.payload) == doc


def test_init_error_ends_init_fails_the_waiting_invocation_and_is_terminal(api: Api) -> None:
    ready = api.submit(api.channel.wait_ready())
    pending = api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    doc = b'{"errorMessage": "Unable to import module", "errorType": "Runtime.ImportModuleError"}'
    headers = {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"}
    assert request(conn, "POST", "/init/error", doc, headers)[0] == 202
    for outcome in (ready.result(5), pending.result(5)):
        assert outcome is not None
        assert (outcome.kind, outcome.error_type, outcome.payload) == (
            ResultKind.INIT_ERROR,
            "Runtime.ImportModuleError",
            doc,
        )
    status, _, body = request(conn, "GET", "/invocation/next")
    assert status == 403
    assert error_of(body)[1].startswith("State transition from InitError to Ready failed")


def test_init_error_after_init_is_done_is_403(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    request(conn, "GET", "/invocation/next")
    status, _, body = request(conn, "POST", "/init/error", b"{}")
    assert status == 403
    assert error_of(body)[1].startswith("State transition from Ready to InitError failed")


def test_a_response_over_6mb_is_413_and_the_invocation_fails_with_response_size_too_large(api: Api) -> None:
    pending = api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    request(conn, "GET", "/invocation/next")
    status, _, body = request(conn, "POST", "/invocation/req-1/response", b"x" * (MAX_PAYLOAD_SIZE + 1))
    assert status == 413
    assert error_of(body) == (
        "RequestEntityTooLarge",
        "Exceeded maximum allowed payload size (6291556 bytes).",
    )
    result = pending.result(5)
    assert (result.kind, result.error_type) == (ResultKind.FUNCTION_ERROR, "Function.ResponseSizeTooLarge")
    assert json.loads(result.payload)["errorMessage"] == (
        "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    )
    nxt = api.submit(api.channel.invoke(invocation("req-2")))
    assert request(conn, "GET", "/invocation/next")[1]["Lambda-Runtime-Aws-Request-Id"] == "req-2"
    request(conn, "POST", "/invocation/req-2/response", b"x" * MAX_PAYLOAD_SIZE)
    assert len(nxt.result(5).payload) == MAX_PAYLOAD_SIZE, "exactly the limit is accepted"


def _raw(api: Api) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_streamed_response_chunks_pass_through_as_they_arrive_with_error_trailers(api: Api) -> None:
    pending = api.submit(api.channel.invoke(invocation()))
    sock = _raw(api)
    sock.sendall(b"GET " + BASE.encode() + b"/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"req-1" in _read_response(sock)
    sock.sendall(
        b"POST " + BASE.encode() + b"/invocation/req-1/response HTTP/1.1\r\nHost: x\r\n"
        b"Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/vnd.awslambda.http-integration-response\r\n"
        b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
        b"5\r\nfirst\r\n"
    )
    result = pending.result(5)
    assert result.stream is not None
    assert result.content_type == "application/vnd.awslambda.http-integration-response"
    chunks = aiter(result.stream)
    assert api.call(anext(chunks)) == b"first", "the first chunk arrives before the runtime sent the rest"
    error_body = base64.b64encode(b'{"errorMessage":"midway","errorType":"Boom"}')
    sock.sendall(
        b"6\r\nsecond\r\n0\r\nLambda-Runtime-Function-Error-Type: Boom\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + error_body + b"\r\n\r\n"
    )
    assert api.call(anext(chunks)) == b"second"
    with pytest.raises(StopAsyncIteration):
        api.call(anext(chunks))
    assert result.stream.error_type == "Boom"
    assert result.stream.error_body == b'{"errorMessage":"midway","errorType":"Boom"}'
    assert b" 202 " in _read_response(sock)
    sock.close()


def test_expect_100_continue_is_answered_so_curl_style_clients_do_not_stall(api: Api) -> None:
    pending = api.submit(api.channel.invoke(invocation()))
    sock = _raw(api)
    sock.sendall(b"GET " + BASE.encode() + b"/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    _read_response(sock)
    sock.sendall(
        b"POST " + BASE.encode() + b"/invocation/req-1/response HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(b"ok")
    assert b" 202 " in _read_response(sock)
    assert pending.result(5).payload == b"ok"
    sock.close()


def test_an_unknown_response_mode_is_400(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    conn = api.connect()
    request(conn, "GET", "/invocation/next")
    headers = {"Lambda-Runtime-Function-Response-Mode": "telepathy"}
    status, _, body = request(conn, "POST", "/invocation/req-1/response", b"{}", headers)
    assert (status, error_of(body)[0]) == (400, "InvalidFunctionResponseMode")


def test_unknown_paths_are_404_and_wrong_methods_405(api: Api) -> None:
    conn = api.connect()
    assert request(conn, "GET", "/nothing/here")[0] == 404
    assert request(conn, "POST", "/invocation/next", b"")[0] == 405
    assert request(conn, "GET", "/invocation/req-1/response")[0] == 405


def test_closing_the_channel_drops_the_long_poll_and_fails_invocations(api: Api) -> None:
    conn = api.connect()
    conn.request("GET", BASE + "/invocation/next")
    time.sleep(0.05)
    api.later(api.channel.close, "environment reset")
    with pytest.raises((ConnectionError, OSError)):
        conn.getresponse().read()
    with pytest.raises(ChannelClosed):
        api.call(api.channel.invoke(invocation("after")))


def test_only_one_invocation_is_outstanding_at_a_time(api: Api) -> None:
    api.submit(api.channel.invoke(invocation()))
    time.sleep(0.05)
    with pytest.raises(ChannelBusy):
        api.call(api.channel.invoke(invocation("second")))


def test_the_server_serves_a_unix_socket_too(tmp_path: object) -> None:
    import asyncio
    import os
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "rapi.sock")

    async def scenario() -> bytes:
        channel = RuntimeChannel()
        server = RuntimeApiServer(channel)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen()
        serving = asyncio.create_task(server.serve(sock))
        pending = asyncio.ensure_future(channel.invoke(invocation()))
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"GET " + BASE.encode() + b"/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(9)
        writer.write(
            b"POST " + BASE.encode() + b"/invocation/req-1/response HTTP/1.1\r\nContent-Length: 1\r\n\r\n1"
        )
        result = await pending
        writer.close()
        server.close()
        serving.cancel()
        assert result.payload == b"1"
        return head + body

    assert b"Lambda-Runtime-Aws-Request-Id: req-1" in asyncio.run(asyncio.wait_for(scenario(), 10))
