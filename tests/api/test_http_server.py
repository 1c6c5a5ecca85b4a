"""The HTTP server's own settings, on a real server: how long an idle connection stays open."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from shipyard.api.http_server import uvicorn_config
from shipyard.settings import Settings
from tests.conftest import read_http_answer, start_server

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_an_idle_connection_stays_open_for_keep_alive_seconds(
    tmp_path: Path, database_url: str
) -> None:
    with (
        start_server(tmp_path / "data", database_url, keep_alive_seconds=2) as running,
        socket.create_connection(("127.0.0.1", int(running.url.rsplit(":", 1)[1]))) as sock,
    ):
        sock.settimeout(10)
        sock.sendall(REQUEST)
        assert read_http_answer(sock)[0].startswith(b"HTTP/1.1 200")
        time.sleep(1)  # idle, within the setting: the same connection answers again
        sock.sendall(REQUEST)
        assert read_http_answer(sock)[0].startswith(b"HTTP/1.1 200")
        time.sleep(3)  # idle past it: the server has closed its end
        assert sock.recv(1) == b""


def test_by_default_connections_outlive_a_proxys_idle_timeout(tmp_path: Path) -> None:
    # uvicorn's own default (5 s) closes pooled connections between a training loop's calls.
    settings = Settings(data_dir=tmp_path)
    assert uvicorn_config(app=_nothing, settings=settings).timeout_keep_alive > 60


async def _nothing(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not served")
