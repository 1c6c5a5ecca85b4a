"""The HTTP protocol the server runs (uvicorn's httptools one, see api/http_protocol.py), on a
real uvicorn server on a loopback port: a big body's pieces reach the app as the very objects
the parser made (no copies on the way), and bodies of every shape still arrive whole."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from shipyard.api.http_protocol import PassThroughBodyProtocol
from tests.conftest import read_http_answer

PARSED: list[bytes] = []  # every piece the parser handed the protocol, in order


class RecordingProtocol(PassThroughBodyProtocol):
    def on_body(self, body: bytes) -> None:
        PARSED.append(body)
        super().on_body(body)


class EchoApp:
    """Answers with the body's size and last bytes; keeps every piece it was given."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            self.received.append(message["body"])
            body += message["body"]
            if not message.get("more_body"):
                break
        answer = str(len(body)).encode() + b" " + bytes(body[-16:]).hex().encode()
        headers = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@contextmanager
def serving(app: EchoApp) -> Iterator[int]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=RecordingProtocol, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def expected(body: bytes) -> str:
    return f"{len(body)} {body[-16:].hex()}"


def test_a_big_body_s_pieces_reach_the_app_uncopied() -> None:
    app = EchoApp()
    body = os.urandom(16 * 1024 * 1024)
    PARSED.clear()
    with serving(app) as port:
        answer = httpx.put(f"http://127.0.0.1:{port}/", content=body, timeout=30)
    assert answer.text == expected(body)
    assert b"".join(app.received) == body
    big = [piece for piece in app.received if len(piece) > 64 * 1024]
    assert big, "the body came in small pieces only"
    parsed = {id(piece) for piece in PARSED}
    # uvicorn's own protocol hands the app a copy of every piece; here almost all are the
    # parser's objects themselves (a piece that met another one is joined, a copy).
    passed = sum(id(piece) in parsed for piece in big)
    assert passed >= 0.9 * len(big)


def test_small_pieces_that_meet_are_joined_in_order() -> None:
    app = EchoApp()
    body = os.urandom(300_000)
    with serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        for at in range(0, len(body), 1000):  # a dribble: many small pieces
            sock.sendall(body[at : at + 1000])
        assert read_http_answer(sock)[1].decode() == expected(body)
    assert b"".join(app.received) == body


def test_chunked_and_keep_alive_bodies_arrive_whole() -> None:
    app = EchoApp()
    first, second = os.urandom(200_000), os.urandom(5)

    def chunks() -> Iterator[bytes]:
        for at in range(0, len(first), 70_000):
            yield first[at : at + 70_000]

    with serving(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        # A generator without a length goes chunked; the next request reuses the connection.
        assert client.post("/", content=chunks()).text == expected(first)
        assert client.post("/", content=second).text == expected(second)
        assert client.get("/").text == expected(b"")
