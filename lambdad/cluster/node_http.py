"""A lean HTTP/1.1 client for requests between nodes: keep-alive connections per node, the request
written in one piece, responses parsed by httptools and read chunk by chunk as they arrive.

Why not httpx: measured on a forwarded warm invoke, httpx cost the forwarding node 3.8 ms of CPU per
request (its request and response models, a failed ``import sniffio`` twice per request in httpcore's
locks, headers and body written in two sends), more than the invoke itself costs the node that runs it
(~1 ms). This client does only what forwarding needs: one request at a time per connection, a body
known in advance, a response streamed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

Headers = list[tuple[bytes, bytes]]
READ_SIZE = 65536
REUSE_FOR = 3.0  # seconds an idle kept-alive connection is reused for (nodes close theirs after 5 s)


class Unreachable(Exception):
    """The request was not sent: no connection could be made (another node may take it)."""


class Broken(Exception):
    """The connection failed after the request was sent: the target may have run it."""


class _Parsed:
    """httptools' callbacks: the status, headers and body chunks of one response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        # Asked here: httptools forgets it once the message is complete (it then always says False).
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


class Response:
    """A response whose status and headers are in; ``chunks()`` reads the body as it arrives."""

    def __init__(
        self,
        client: NodeClient,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        parser: httptools.HttpResponseParser,
        parsed: _Parsed,
        read_timeout: float,
        head_only: bool,
    ) -> None:
        self._client = client
        self._connection = connection
        self._parser = parser
        self._parsed = parsed
        self._read_timeout = read_timeout
        self._head_only = head_only
        self.status = parser.get_status_code()
        self.headers = parsed.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks; Broken if the connection fails before the body ends."""
        parsed = self._parsed
        reader, writer = self._connection
        try:
            while True:
                while parsed.chunks:
                    yield parsed.chunks.pop(0)
                if parsed.complete or self._head_only:
                    break
                data = await _read(reader, self._read_timeout)
                try:
                    self._parser.feed_data(data)
                except httptools.HttpParserError as error:
                    raise Broken(f"malformed response: {error}") from error
        except BaseException:
            writer.close()
            raise
        if self._head_only or not parsed.keep_alive:
            writer.close()
        else:
            self._client.give_back(self._connection)


class NodeClient:
    """Connections to one node, kept alive between requests."""

    def __init__(self, url: str, max_idle: int = 64) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._authority = parts.netloc.encode("latin-1")
        # Idle connections, each with the monotonic time it became idle.
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._max_idle = max_idle

    def give_back(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append((*connection, time.monotonic()))
        else:
            connection[1].close()

    async def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()

    async def request(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Response:
        """Send the request and wait for the response's status and headers.

        Unreachable if no connection could be made; Broken if the response did not come (the request
        may have run: it is never sent again, since an invocation must not run twice because a node
        died). So that a kept-alive connection is never one the node is closing as it is reused, none is
        reused after REUSE_FOR seconds idle (less than the nodes' keep-alive timeout, uvicorn's 5 s), nor
        once its end was seen.
        """
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1")]
        if not any(name.lower() == b"host" for name, _ in headers):
            lines.append(b"host: " + self._authority + b"\r\n")
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        lines.append(b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
        message = b"".join(lines) + body
        while self._idle:
            reader, writer, since = self._idle.pop()
            if reader.at_eof() or writer.is_closing() or time.monotonic() - since > REUSE_FOR:
                writer.close()
                continue
            return await self._exchange((reader, writer), message, method, read_timeout)
        try:
            async with asyncio.timeout(connect_timeout):
                connection = await asyncio.open_connection(self._host, self._port)
        except (OSError, TimeoutError) as error:
            raise Unreachable(f"{self._host}:{self._port}: {error or type(error).__name__}") from error
        return await self._exchange(connection, message, method, read_timeout)

    async def _exchange(
        self,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        message: bytes,
        method: str,
        read_timeout: float,
    ) -> Response:
        reader, writer = connection
        parsed = _Parsed()
        parser = parsed.parser
        try:
            writer.write(message)
            await writer.drain()
            while not parsed.headers_done:
                parser.feed_data(await _read(reader, read_timeout))
        except (Broken, OSError, httptools.HttpParserError) as error:
            writer.close()
            raise Broken(str(error) or type(error).__name__) from error
        except BaseException:
            writer.close()
            raise
        return Response(self, connection, parser, parsed, read_timeout, method == "HEAD")


async def _read(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            data = await reader.read(READ_SIZE)
    except TimeoutError as error:
        raise Broken(f"no answer within {timeout:.0f} s") from error
    if not data:
        raise Broken("the connection was closed")
    return data


async def close_all(clients: dict[str, NodeClient]) -> None:
    for client in clients.values():
        with contextlib.suppress(Exception):
            await client.close()
