"""Shared fixtures: a fresh database per test module, and a real server on a loopback port.

The suite runs on SQLite by default. With ``SHIPYARD_TEST_DATABASE_URL`` set to a PostgreSQL
server URL (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), every module gets
its own freshly created PostgreSQL database on that server instead, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from shipyard.api.app import create_app
from shipyard.api.deps import Services
from shipyard.api.http_server import uvicorn_config
from shipyard.sdk.client import Client
from shipyard.services.bootstrap import prepare
from shipyard.settings import Settings
from shipyard.store.database import Database
from tests.s3server import S3Server, run_s3_server

ADMIN_TOKEN = "shp_test-admin-token-not-secret"
PG_ENV = "SHIPYARD_TEST_DATABASE_URL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own profile, settings or token."""
    for name in list(os.environ):
        if name.startswith("SHIPYARD_") and name != PG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg's own connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        yield f"sqlite:///{tmp_path / 'shipyard.db'}"
        return
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(tmp_path)


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database_url(tmp_path_factory.mktemp("db"))


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "db_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "port": free_port(),
        **overrides,
    }
    return Settings(**values)


@dataclass
class RunningServer:
    url: str
    settings: Settings
    db: Database
    services: Services  # the running app's own, for checks against the same store
    admin_token: str = ADMIN_TOKEN

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def client(self, token: str | None = ADMIN_TOKEN) -> Client:
        return Client(self.url, token)


class ServerThread:
    """The real app under uvicorn, on a free loopback port, in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        prepare(settings, self.db)
        self.app = create_app(settings, self.db)  # tests may add routes before it starts
        self.server = uvicorn.Server(uvicorn_config(self.app, settings))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        url = f"http://127.0.0.1:{self.settings.port}"
        services = self.app.state.services
        return RunningServer(url=url, settings=self.settings, db=self.db, services=services)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def start_server(data_dir: Path, database_url: str, **overrides: Any) -> ServerThread:
    return ServerThread(make_settings(data_dir, database_url, **overrides))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    """One real server per test module (tests use names unique within their module)."""
    with start_server(tmp_path_factory.mktemp("data"), module_database_url) as running:
        yield running


@pytest.fixture
def admin(server: RunningServer) -> Iterator[Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS) for the whole session; a test takes its own
    bucket with ``s3_server.new_bucket()`` and its options with ``s3_server.options()``."""
    with run_s3_server(tmp_path_factory.mktemp("s3")) as running:
        yield running


def read_http_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole HTTP/1.1 answer with a Content-Length, read from a raw socket: its head and
    body, or (whatever came, b"") when the server closed before the head was complete."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def unique(prefix: str = "ws") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
