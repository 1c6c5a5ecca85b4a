"""uvicorn's HTTP/1.1 protocol (httptools), with two shortcuts for big request bodies.

- **Pieces pass through.** uvicorn (0.45 and later) gathers the body pieces of a request in a
  ``bytearray`` and hands the app ``bytes`` of it: every byte of an upload copied twice on the
  event loop. Each gathering here starts from an empty ``bytes`` instead, and the first piece
  then goes through untouched (``b"" + piece`` and ``bytes(piece)`` are ``piece`` itself).
  Past 64 KiB uvicorn pauses reading until the app takes what is gathered, so nearly every
  piece of a big body is the only one; small pieces that do meet are joined as before.
- **The rest of a body, straight from the socket.** A request with a ``Content-Length``
  offers the ASGI extension ``scope["extensions"][RAW_BODY]``: called on the event loop, it
  stops the parser's reading and returns a ``RawBody`` that a worker thread reads the rest of
  the body from, in big pieces and without the event loop (which otherwise receives, parses
  and copies each 256 KB piece, most of a big upload's CPU). The connection is then closed
  once the response is sent (``Connection: close``): the parser never saw the body's end.
  Not offered over TLS (the socket carries ciphertext) or for chunked bodies.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from functools import partial

from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: The ASGI extension's key in ``scope["extensions"]``.
RAW_BODY = "shipyard.raw_body"
#: The most read from the socket at once.
RAW_PIECE = 1024 * 1024
#: A client that sends nothing for this long in the middle of a body is dropped.
RAW_TIMEOUT_SECONDS = 300.0


class RawBody:
    """The part of a request body the parser has not read, read from a duplicate of the
    connection's socket (closed when done; the connection itself stays the server's)."""

    def __init__(self, sock: socket.socket, remaining: int) -> None:
        self._sock = sock
        self.remaining = remaining

    def read_into(self, write: Callable[[bytes], object]) -> None:
        """Pass every remaining byte to ``write``, in order (blocking: call from a thread).
        Raises ``ClientDisconnect`` if the client goes away first."""
        try:
            while self.remaining:
                try:
                    piece = self._sock.recv(min(self.remaining, RAW_PIECE))
                except OSError as exc:  # a reset or the timeout
                    raise ClientDisconnect() from exc
                if not piece:
                    raise ClientDisconnect()
                self.remaining -= len(piece)
                write(piece)
        finally:
            self._sock.close()


class _ReadingStopped:
    """A connection's flow control for a cycle whose body was handed over: uvicorn's
    ``receive`` would resume reading, and the event loop must not read the socket under the
    thread. Everything else (the writing side) is the connection's own."""

    def __init__(self, flow: object) -> None:
        self._flow = flow

    def resume_reading(self) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._flow, name)


class PassThroughBodyProtocol(HttpToolsProtocol):
    _body_seen = 0  # bytes of the current request's body the parser has read

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._body_seen = 0

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            extensions = dict(self.scope.get("extensions") or {})
            extensions[RAW_BODY] = partial(self._take_body, cycle)  # type: ignore[assignment]
            self.scope["extensions"] = extensions

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        cycle = self.cycle
        if not cycle.body:
            # An empty bytes, not uvicorn's bytearray: its += returns the piece itself.
            cycle.body = b""  # type: ignore[assignment]
        super().on_body(body)

    def _take_body(self, cycle: RequestResponseCycle) -> RawBody | None:
        """Hand the rest of ``cycle``'s body to the caller, or None when it cannot be: the
        app must have taken every piece received so far (call it right after a receive)."""
        length = _content_length(cycle.scope["headers"])
        raw = self.transport.get_extra_info("socket")
        if (
            length is None
            or raw is None
            or self.transport.get_extra_info("sslcontext") is not None
            or cycle is not self.cycle  # the parser is past it (pipelined requests)
            or self.pipeline
            or not cycle.more_body
            or cycle.disconnected
            or cycle.body  # pieces the app has not taken
        ):
            return None
        self.flow.pause_reading()
        cycle.flow = _ReadingStopped(self.flow)  # type: ignore[assignment]
        cycle.keep_alive = False  # the parser never sees this body's end
        if cycle.waiting_for_100_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        sock = socket.socket(fileno=os.dup(raw.fileno()))
        sock.settimeout(RAW_TIMEOUT_SECONDS)
        return RawBody(sock, length - self._body_seen)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The body's declared length; None for a chunked body or none declared."""
    length = None
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length" and value.isdigit():
            length = int(value)
    return length
