"""An HTTP server that answers at once: the ``mlflow`` client's own floor.

A ratio against MLflow's server is bounded by the client: with a server that took no time at
all, a call would still cost what the client spends building the request, sending it and
parsing the answer. This server measures that bound with real answers. It sits in front of
an upstream server (Shipyard); the first request for a method, path and query goes upstream
and its answer is kept; every later request for the same method, path and query gets the
kept answer at once, without reading anything upstream. The client therefore parses exactly
what the real server sends, and the time it takes is the client's alone.

Run it as a process of its own (so it does not share the client's interpreter):

    python benchmarks/replay_server.py --upstream http://127.0.0.1:8000 --port 8001

It prints ``ready`` once it listens. Only for benchmarks: answers are kept by request line
only (bodies are not compared), it speaks just enough HTTP/1.1 for the ``mlflow`` client
(``Content-Length`` bodies, kept-alive connections) and binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import sys
from urllib.parse import urlsplit

# Headers passed upstream: what decides the answer (who asks, in which form).
_FORWARDED = ("authorization", "content-type", "accept")


class Replay:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.kept: dict[tuple[str, str], bytes] = {}
        self._upstream: http.client.HTTPConnection | None = None

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """The whole HTTP answer to send back: kept, or fetched once and kept."""
        key = (method, target)
        kept = self.kept.get(key)
        if kept is None:
            kept = self.kept[key] = self._fetch(method, target, headers, body)
        return kept

    def _fetch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        # Blocking, on purpose: only the first request of each kind comes here, untimed.
        sent = {k: v for k, v in headers.items() if k in _FORWARDED}
        try:
            response = self._send(method, target, sent, body)
        except (http.client.RemoteDisconnected, ConnectionError):
            # The upstream closed the kept-alive connection while it sat idle: once more, anew.
            self._upstream = None
            response = self._send(method, target, sent, body)
        content = response.read()  # de-chunked, if the upstream streamed it
        kind = response.getheader("content-type", "application/json")
        head = (
            f"HTTP/1.1 {response.status} {response.reason}\r\n"
            f"content-type: {kind}\r\ncontent-length: {len(content)}\r\n\r\n"
        )
        return head.encode("latin-1") + content

    def _send(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> http.client.HTTPResponse:
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(self.host, self.port, timeout=300)
        self._upstream.request(method, target, body=body or None, headers=headers)
        return self._upstream.getresponse()


async def serve_connection(
    replay: Replay, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            writer.write(replay.answer(method, target, headers, body))
            await writer.drain()
    finally:
        writer.close()


async def main_async(upstream: str, port: int) -> None:
    replay = Replay(upstream)
    server = await asyncio.start_server(
        lambda r, w: serve_connection(replay, r, w), "127.0.0.1", port
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the real server, http://host:port")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.upstream, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
