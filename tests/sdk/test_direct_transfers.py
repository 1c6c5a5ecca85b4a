"""Big files go up and come down over a connection of their own (``HttpSession.put_file``,
``download_file``): the bytes exact, server errors mapped as every SDK call maps them (a 413
sent before the body is all out included), nothing left behind when a download fails, and a
proxy setting still honoured (the transfer then goes through httpx)."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from shipyard.domain.errors import NotFoundError, ShipyardError, UnavailableError
from shipyard.sdk.client import Client
from shipyard.sdk.http import DIRECT_BYTES, DOWNLOAD_PIECE, HttpSession
from tests.conftest import ADMIN_TOKEN, RunningServer, start_server, unique

BIG = DIRECT_BYTES + 3 * DOWNLOAD_PIECE + 11


def session(url: str) -> HttpSession:
    return HttpSession(url, ADMIN_TOKEN, timeout=30, user_agent="test")


@pytest.fixture
def big_artifact(admin: Client, tmp_path: Path) -> tuple[str, bytes]:
    """A run's big artifact; returns its URL path and its bytes."""
    name = unique("ws")
    admin.workspaces.create(name=name)
    ws = admin.workspace(name)
    data = os.urandom(BIG)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    with ws.start_run(experiment=unique("exp")) as run:
        run.log_artifact(source)
    return f"/api/v1/workspaces/{name}/runs/{run.id}/artifacts/big.bin", data


def test_a_big_file_downloads_exactly(
    server: RunningServer, big_artifact: tuple[str, bytes], tmp_path: Path
) -> None:
    path, data = big_artifact
    local = tmp_path / "out" / "big.bin"
    http = session(server.url)
    if not os.environ.get("HTTP_PROXY") and not os.environ.get("http_proxy"):
        assert http._direct()  # the connection of its own, not httpx
    http.download_file(path, local, size=len(data))
    assert hashlib.sha256(local.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert sorted(p.name for p in local.parent.iterdir()) == ["big.bin"]


def test_a_missing_file_is_the_server_s_404_and_leaves_nothing(
    server: RunningServer, big_artifact: tuple[str, bytes], tmp_path: Path
) -> None:
    path, _ = big_artifact
    with pytest.raises(NotFoundError) as caught:
        session(server.url).download_file(path + ".nope", tmp_path / "nope.bin", size=BIG)
    assert caught.value.status == 404
    assert list(tmp_path.glob("nope*")) == []


def test_a_server_that_is_not_there_is_unreachable_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(UnavailableError) as caught:
        session(f"http://127.0.0.1:{port}").download_file("/x", tmp_path / "x.bin", size=BIG)
    assert caught.value.code == "unreachable"
    assert list(tmp_path.iterdir()) == []


def test_a_proxy_setting_is_honoured(
    server: RunningServer,
    big_artifact: tuple[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, data = big_artifact
    with socket.socket() as free:  # a proxy that is not there
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # Sent to the proxy, not past it: the download fails as the proxy is not there.
    with pytest.raises(UnavailableError):
        session(server.url).download_file(path, tmp_path / "a.bin", size=len(data))
    # Excluded from the proxy, the file comes down directly.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session(server.url).download_file(path, tmp_path / "b.bin", size=len(data))
    assert (tmp_path / "b.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "big.bin"]


def test_a_big_upload_over_the_limit_is_the_server_s_413(tmp_path: Path, database_url: str) -> None:
    # The server answers before the body is all sent; the client still reports that answer.
    limit = DIRECT_BYTES + 1024 * 1024
    source = tmp_path / "over.bin"
    source.write_bytes(os.urandom(limit + 32 * 1024 * 1024))
    with start_server(tmp_path / "data", database_url, max_artifact_bytes=limit) as running:
        client = running.client()
        name = unique("ws")
        client.workspaces.create(name=name)
        ws = client.workspace(name)
        with ws.start_run(experiment=unique("exp")) as run:
            with pytest.raises(ShipyardError) as caught:
                run.log_artifact(source)
            assert caught.value.status == 413
            assert ws.jobs.artifacts(run.id).list() == []
