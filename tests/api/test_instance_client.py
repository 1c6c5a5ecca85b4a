"""The gateway's client to scoring instances, against small real servers on loopback that
answer the way an instance can (and the ways it can fail)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shipyard.api.instance_client import (
    InstanceAnswerError,
    InstanceClient,
    InstanceUnavailableError,
)
from tests.conftest import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


def _answer(body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
        % (extra, len(body), body)
    )


async def _with_server(handler: Handler, test: Callable[[int], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await test(port)
    finally:
        server.close()


def test_answers_come_back_and_connections_are_kept() -> None:
    connections = 0

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                body = await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(_answer(b"[" + body + b"]"))

    async def test(port: int) -> None:
        client = InstanceClient()
        for n in range(5):
            answer = await client.post("127.0.0.1", port, b"%d" % n, b"application/json", 5)
            assert (answer.status, answer.body, answer.content_type) == (
                200,
                b"[%d]" % n,
                b"application/json",
            )
        big = b"x" * 200_000  # written apart from the head
        assert (
            await client.post("127.0.0.1", port, big, b"text/plain", 5)
        ).body == b"[" + big + b"]"
        await client.aclose()

    asyncio.run(_with_server(echo, test))
    assert connections == 1


def test_a_kept_connection_the_instance_closed_is_replaced_once() -> None:
    async def one_answer_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        # Answers without saying it will close, then closes: the client keeps the connection.
        writer.write(_answer(b"ok"))
        await writer.drain()
        writer.close()

    async def test(port: int) -> None:
        client = InstanceClient()
        for _ in range(3):
            answer = await client.post("127.0.0.1", port, b"{}", b"application/json", 5)
            assert answer.body == b"ok"
        await client.aclose()

    asyncio.run(_with_server(one_answer_per_connection, test))


def test_a_chunked_answer_is_read_whole_and_its_connection_kept() -> None:
    """Ray Serve's proxy sends its own refusals chunked, on a connection it keeps open."""
    connections = 0
    chunked = (
        b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n"
        b"content-type: text/plain\r\n\r\n"
        b"7\r\nRequest\r\n1c;ext=1\r\n dropped due to backpressure\r\n0\r\nx-t: 1\r\n\r\n"
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(chunked)

    async def test(port: int) -> None:
        client = InstanceClient()
        for _ in range(2):
            answer = await asyncio.wait_for(
                client.post("127.0.0.1", port, b"{}", b"application/json", 5), 2
            )
            assert answer.status == 503
            assert answer.body == b"Request dropped due to backpressure"
            assert answer.content_type == b"text/plain"
        await client.aclose()

    asyncio.run(_with_server(serve, test))
    assert connections == 1


def test_a_refused_connection_is_unavailable() -> None:
    async def test() -> None:
        client = InstanceClient()
        with pytest.raises(InstanceUnavailableError):
            await client.post("127.0.0.1", free_port(), b"{}", b"application/json", 5)

    asyncio.run(test())


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"", InstanceUnavailableError),  # closed before answering
        (b"garbage\r\n\r\n", InstanceAnswerError),  # not HTTP
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", InstanceAnswerError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", InstanceAnswerError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", InstanceAnswerError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", InstanceAnswerError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", InstanceAnswerError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd", InstanceAnswerError),
    ],
)
def test_broken_answers(reply: bytes, error: type[Exception]) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def test(port: int) -> None:
        client = InstanceClient()
        with pytest.raises(error):
            await client.post("127.0.0.1", port, b"{}", b"application/json", 5)

    asyncio.run(_with_server(broken, test))


def test_a_slow_answer_times_out_and_its_connection_is_dropped() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    async def test(port: int) -> None:
        client = InstanceClient()
        with pytest.raises(TimeoutError):
            await client.post("127.0.0.1", port, b"{}", b"application/json", 0.2)
        assert client._idle.get(("127.0.0.1", port), []) == []
        await client.aclose()

    asyncio.run(_with_server(slow, test))
