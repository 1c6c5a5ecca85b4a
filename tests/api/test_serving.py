"""How the server serves: Nagle's algorithm off on every accepted connection (a small
response must not wait for the client's delayed ACK), on the event loop and HTTP parser
uvicorn picks by default, which ``shipyard server`` uses too."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shipyard.api.http_protocol import PassThroughBodyProtocol
from tests.conftest import start_server


def test_accepted_connections_have_tcp_nodelay(tmp_path: Path, database_url: str) -> None:
    thread = start_server(tmp_path, database_url)
    with thread as running, httpx.Client(base_url=running.url) as client:
        assert client.get("/health").status_code == 200  # the connection stays open
        connections = list(thread.server.server_state.connections)
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_fast_parser_and_loop_are_installed(tmp_path: Path, database_url: str) -> None:
    """uvicorn uses httptools and uvloop when they are installed (they are dependencies)."""
    thread = start_server(tmp_path, database_url)
    with thread as running, httpx.Client(base_url=running.url) as client:
        client.get("/health")
        (protocol,) = list(thread.server.server_state.connections)
        # uvicorn's httptools protocol, as extended by the server (api/http_protocol.py)
        assert isinstance(protocol, HttpToolsProtocol)
        assert type(protocol) is PassThroughBodyProtocol
        loop = protocol.loop  # type: ignore[attr-defined]
        assert type(loop).__module__.startswith("uvloop")
