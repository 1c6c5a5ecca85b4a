"""The gateway's HTTP/1.1 client to scoring instances: pooled keep-alive connections, lean.

Every scoring request crosses this hop, so it is written for that one peer rather than with
a general HTTP client: an instance is our own scoring server on loopback (``serving/
scoring_server.py``), which answers every ``POST /score`` with a ``Content-Length`` body, or
Ray Serve's HTTP proxy (``serving/ray_serve_deployment.py``), whose own refusals (its 503 on
backpressure) come chunked.
A general client (httpx) spent more of the gateway's CPU per request than the rest of the
gateway together (request and header objects, its pool's bookkeeping, h11's parser); this
one writes one buffer and reads the head and the body, and keeps the connection for the
next request.

A failure before any byte of an answer came back (refused, reset, a kept connection the
instance closed) is ``InstanceUnavailableError``: the caller may try another instance. Once the
answer started, a failure is ``InstanceAnswerError`` (the request may have run).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

#: Idle connections kept per instance; more are opened under load and closed after use.
MAX_IDLE = 64
#: The longest answer head accepted (status line and headers).
MAX_HEAD = 64 * 1024


class InstanceUnavailableError(Exception):
    """Nothing came back: the request did not reach the instance's ``run`` (or may not
    have), and another instance can take it."""


class InstanceAnswerError(Exception):
    """The instance's answer broke off or was not HTTP."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: bytes | None


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class InstanceClient:
    """Made in the server's event loop; ``aclose`` as it stops."""

    def __init__(self) -> None:
        self._idle: defaultdict[tuple[str, int], list[_Connection]] = defaultdict(list)

    async def post(
        self,
        host: str,
        port: int,
        body: bytes,
        content_type: bytes,
        timeout: float,
        path: bytes = b"/score",
    ) -> Answer:
        """``POST <path>`` to the instance (``/score``; a Ray Serve application's route
        prefix on Serve's HTTP proxy); ``TimeoutError`` past ``timeout`` seconds."""
        address = (host, port)
        head = (
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"\r\n" % (path, host.encode(), port, content_type, len(body))
        )
        async with asyncio.timeout(timeout):
            connection, kept = await self._connection(address)
            try:
                return await self._exchange(address, connection, head, body)
            except InstanceUnavailableError:
                if not kept:
                    raise
            # A kept connection the instance had closed without our seeing it yet: the
            # request never reached it, so a fresh connection may carry it.
            connection, _ = await self._connection(address, fresh=True)
            return await self._exchange(address, connection, head, body)

    async def _exchange(
        self, address: tuple[str, int], connection: _Connection, head: bytes, body: bytes
    ) -> Answer:
        reader, writer = connection
        reusable = False
        try:
            if len(body) < 65536:
                writer.write(head + body)
            else:  # a big body is not copied to join it to the head
                writer.writelines((head, body))
            answer, reusable = await _read_answer(reader)
        finally:
            if reusable and len(self._idle[address]) < MAX_IDLE:
                self._idle[address].append(connection)
            else:
                writer.close()
        return answer

    async def _connection(
        self, address: tuple[str, int], *, fresh: bool = False
    ) -> tuple[_Connection, bool]:
        """A connection to the instance, and whether it was kept from an earlier request."""
        idle = self._idle[address]
        while idle and not fresh:
            reader, writer = idle.pop()
            # A connection the instance closed while idle (it stopped) reads as at EOF.
            if not reader.at_eof() and not writer.is_closing():
                return (reader, writer), True
            writer.close()
        self._prune()
        try:
            return await asyncio.open_connection(*address, limit=MAX_HEAD), False
        except OSError as exc:
            raise InstanceUnavailableError(str(exc)) from exc

    def _prune(self) -> None:
        """Close kept connections that their instance closed (it stopped: rolled over,
        scaled down, crashed), so they do not pile up over many updates."""
        for address in list(self._idle):
            live = []
            for reader, writer in self._idle[address]:
                if reader.at_eof() or writer.is_closing():
                    writer.close()
                else:
                    live.append((reader, writer))
            if live:
                self._idle[address] = live
            else:
                del self._idle[address]

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for _, writer in connections:
                writer.close()
        self._idle.clear()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """The answer, and whether its connection can take another request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:  # closed before answering: nothing of this request came back
            raise InstanceUnavailableError("the instance closed the connection") from exc
        raise InstanceAnswerError("the instance's answer broke off") from exc
    except asyncio.LimitOverrunError as exc:
        raise InstanceAnswerError("the instance's answer head is too long") from exc
    except ConnectionError as exc:
        raise InstanceUnavailableError(str(exc)) from exc
    lines = head[:-4].split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise InstanceAnswerError("the instance's answer is not HTTP") from exc
    length: int | None = None
    content_type: bytes | None = None
    keep, chunked = True, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError as exc:
                raise InstanceAnswerError("the instance's answer has a bad length") from exc
        elif name == b"content-type":
            content_type = value.strip()
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding" and value.strip().lower() == b"chunked":
            chunked = True
    try:
        if chunked:
            body = await _read_chunks(reader)
        elif length is None:  # the end of the body is where the connection closes
            body, keep = await reader.read(), False
        else:
            body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise InstanceAnswerError("the instance's answer broke off") from exc
    return Answer(status, body, content_type), keep


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    """A ``Transfer-Encoding: chunked`` body: sized chunks up to an empty one, then the
    trailer lines (dropped) up to an empty line."""
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            size = -1
        if size < 0:
            raise InstanceAnswerError("the instance's answer has a bad chunk size")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise InstanceAnswerError("the instance's answer has a malformed chunk")
