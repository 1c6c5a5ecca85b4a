"""Big request bodies, sent both ways a client sends them: with a ``Content-Length`` a worker
thread reads the rest of the body from the socket itself (``http_protocol.RawBody``, the
connection then closes); chunked, the body is handed as it arrives to a thread of its own
(``BodyPipe``) while the event loop receives the rest. The bytes and the sha256 stay exact,
two uploads at once do not mix, a limit, a client going away and a full disk leave nothing
behind, and the loop waits (without blocking) while the writer is behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shipyard.api.file_transfer import INLINE_BYTES, PIPE_BYTES, BodyPipe
from shipyard.storage.base import Written
from shipyard.storage.local import TEMP_PREFIX, LocalStorage, LocalWriter
from tests.conftest import RunningServer, start_server, unique

MIB = 1024 * 1024
LIMIT = 24 * MIB


@pytest.fixture(scope="module")
def big_server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, max_artifact_bytes=LIMIT) as running:
        yield running


@pytest.fixture
def http(big_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=big_server.url, headers=big_server.auth, timeout=60) as client:
        yield client


def run_artifacts(http: httpx.Client) -> str:
    """A new workspace and a run in it; returns the run's artifacts URL."""
    workspace = unique("ws")
    assert http.post("/api/v1/workspaces", json={"name": workspace}).status_code == 201
    run = http.post(f"/api/v1/workspaces/{workspace}/runs", json={}).json()["id"]
    return f"/api/v1/workspaces/{workspace}/runs/{run}/artifacts"


SENT_AS = ["content-length", "chunked"]


def body(data: bytes, sent_as: str) -> bytes | Iterator[bytes]:
    return data if sent_as == "content-length" else odd_pieces(data)


def odd_pieces(data: bytes) -> Iterator[bytes]:
    """The body in pieces of uneven sizes, sent chunked (no Content-Length)."""
    sizes = [1, 4095, 65_537, 300_001, 1_048_579]
    at, turn = 0, 0
    while at < len(data):
        size = sizes[turn % len(sizes)]
        yield data[at : at + size]
        at, turn = at + size, turn + 1


def storage_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def temp_files(root: Path) -> list[Path]:
    return [p for p in storage_files(root) if p.name.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("sent_as", SENT_AS)
def test_big_bodies_are_stored_exactly_even_two_at_once(http: httpx.Client, sent_as: str) -> None:
    bodies = {
        "a.bin": os.urandom(2 * INLINE_BYTES + 12_345),
        "b.bin": os.urandom(PIPE_BYTES + INLINE_BYTES + 7),
    }
    base = run_artifacts(http)

    def put(name: str) -> httpx.Response:
        return http.put(f"{base}/big/{name}", content=body(bodies[name], sent_as))

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = dict(zip(bodies, pool.map(put, bodies), strict=True))
    for name, data in bodies.items():
        assert answers[name].status_code == 201, answers[name].text
        assert answers[name].json() == {
            "path": f"big/{name}",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        # Read from the socket past the parser, a body's connection is not reused.
        closes = answers[name].headers.get("connection") == "close"
        assert closes == (sent_as == "content-length")
        assert http.get(f"{base}/big/{name}").content == data


@pytest.mark.parametrize("sent_as", SENT_AS)
def test_a_big_body_over_the_limit_is_refused_and_leaves_nothing(
    http: httpx.Client, big_server: RunningServer, sent_as: str
) -> None:
    base = run_artifacts(http)
    root = Path(big_server.settings.data_dir) / "artifacts"
    before = set(storage_files(root))
    over = http.put(f"{base}/over.bin", content=body(os.urandom(LIMIT + MIB), sent_as))
    assert over.status_code == 413, over.text
    assert http.get(base, params={"recursive": "true"}).json()["items"] == []
    assert set(storage_files(root)) == before


def put_head(server: RunningServer, path: str, length: int, *extra: str) -> socket.socket:
    """A raw connection that has sent a PUT's head and none of its body."""
    host, port = server.url.removeprefix("http://").split(":")
    lines = [
        f"PUT {path} HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {server.admin_token}",
        *extra,
        f"Content-Length: {length}",
    ]
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(30)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def test_a_client_that_goes_away_mid_body_leaves_nothing(big_server: RunningServer) -> None:
    with httpx.Client(base_url=big_server.url, headers=big_server.auth, timeout=30) as http:
        base = run_artifacts(http)
    root = Path(big_server.settings.data_dir) / "artifacts"
    with put_head(big_server, f"{base}/gone.bin", LIMIT) as sock:
        sock.sendall(os.urandom(2 * INLINE_BYTES))  # past the point a writer thread takes over
        assert wait_for(lambda: temp_files(root) != []), "the server never started writing"
    # The connection is closed with most of the body unsent: the partial file must go.
    assert wait_for(lambda: temp_files(root) == []), temp_files(root)


def test_a_client_that_waits_for_100_continue_gets_it_then_sends_a_big_body(
    big_server: RunningServer,
) -> None:
    # curl asks before sending a big body; the socket is read past the parser afterwards.
    with httpx.Client(base_url=big_server.url, headers=big_server.auth, timeout=30) as http:
        base = run_artifacts(http)
    data = os.urandom(3 * INLINE_BYTES + 5)
    with put_head(big_server, f"{base}/asked.bin", len(data), "Expect: 100-continue") as sock:
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes after answering
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 201 Created", answer[:500]
    assert hashlib.sha256(data).hexdigest().encode() in rest
    assert b"connection: close" in rest.lower()


def wait_for(condition: object, timeout: float = 20) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


# --- a real full disk, hit by the writer thread ---------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.parametrize("sent_as", SENT_AS)
def test_a_disk_that_fills_mid_body_is_507_and_leaves_nothing(
    tmp_path: Path, database_url: str, small_disk: Path, sent_as: str
) -> None:
    with (
        start_server(tmp_path / "data", database_url, artifact_root=str(small_disk)) as running,
        httpx.Client(base_url=running.url, headers=running.auth, timeout=60) as http,
    ):
        base = run_artifacts(http)
        full = http.put(f"{base}/big.bin", content=body(os.urandom(12 * MIB), sent_as))
        assert (full.status_code, full.json()["code"]) == (507, "storage_full"), full.text
        assert http.get(base, params={"recursive": "true"}).json()["items"] == []
    assert storage_files(small_disk) == []


# --- back-pressure, on the pipe itself ---------------------------------------------------------


class GatedUpload:
    """A real local upload whose writes wait until the test opens the gate."""

    def __init__(self, writer: LocalWriter) -> None:
        self.writer = writer
        self.gate = threading.Event()

    def write(self, data: bytes) -> None:
        self.gate.wait(timeout=30)
        self.writer.write(data)

    def commit(self) -> Written:
        return self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


def test_the_loop_waits_while_the_writer_is_behind(tmp_path: Path) -> None:
    upload = GatedUpload(LocalStorage(tmp_path).writer("big.bin"))
    piece = os.urandom(256 * 1024)

    async def send() -> tuple[int, Written]:
        pipe = BodyPipe(upload, asyncio.get_running_loop())
        sent = 1
        while pipe.put(piece):  # the writer is stuck: put says when PIPE_BYTES wait
            sent += 1
        room = asyncio.ensure_future(pipe.room())
        await asyncio.sleep(0.05)  # the loop runs on meanwhile (this sleep ends)...
        assert not room.done()  # ...but there is no room while the gate is shut
        upload.gate.set()
        await asyncio.wait_for(room, timeout=30)
        return sent, await pipe.finish()

    sent, written = asyncio.run(send())
    assert sent * len(piece) >= PIPE_BYTES
    expected = piece * sent
    assert (written.size, written.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert (tmp_path / "big.bin").read_bytes() == expected
