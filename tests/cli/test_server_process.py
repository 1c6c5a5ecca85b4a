"""``shipyard server`` and ``shipyard db`` as real processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port

TOKEN_PATTERN = re.compile(r"shp_[A-Za-z0-9_-]{20,}")
ENV_ADMIN_TOKEN = "shp_process-test-admin-token"


def shipyard(*args: str) -> list[str]:
    return [sys.executable, "-m", "shipyard", *args]


def environment(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "SHIPYARD_DB_URL": database_url, **extra}


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then the exit code (the process must end within ``timeout`` seconds)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def server_process(
    data_dir: Path, env: Mapping[str, str], extra_args: Sequence[str] = ()
) -> Iterator[ServerProcess]:
    """A ``shipyard server`` process, ready (GET /health answers); killed by PID at the end."""
    port = free_port()
    log_dir = data_dir.parent / f"logs-{port}"
    log_dir.mkdir(parents=True)
    stderr_path = log_dir / "stderr"
    with (log_dir / "stdout").open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            shipyard("server", "--port", str(port), "--data-dir", str(data_dir), *extra_args),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    running = ServerProcess(process, f"http://127.0.0.1:{port}", stderr_path)
    try:
        _wait_until_ready(running)
        yield running
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited early:\n{server.stderr}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not become ready:\n{server.stderr}")


def whoami(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


def test_first_start_prints_an_admin_token_once_and_saves_it_privately(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = environment(database_url)

    with server_process(data_dir, env) as first:
        printed = TOKEN_PATTERN.findall(first.stderr)
        assert len(printed) == 1, first.stderr
        token = printed[0]
        token_file = data_dir / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert token_file.read_text().strip() == token
        me = whoami(first.url, token)
        assert me.status_code == 200
        assert me.json()["name"] == "admin"
        assert me.json()["is_admin"] is True
        assert first.stop() == 0

    with server_process(data_dir, env) as second:
        assert TOKEN_PATTERN.findall(second.stderr) == []
        assert token not in second.stderr
        assert whoami(second.url, token).status_code == 200
        assert token_file.read_text().strip() == token
        assert second.stop() == 0


def test_the_admin_token_can_come_from_the_environment(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "data"
    env = environment(database_url, SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN)
    with server_process(data_dir, env) as running:
        assert whoami(running.url, ENV_ADMIN_TOKEN).json()["name"] == "admin"
        assert whoami(running.url, "shp_some-other-token").status_code == 401
        assert TOKEN_PATTERN.findall(running.stderr) == []
        assert not (data_dir / "admin-token").exists()


def test_json_logs_carry_the_request_id_of_the_response(tmp_path: Path, database_url: str) -> None:
    env = environment(database_url, SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN)
    with server_process(tmp_path / "data", env, ["--log-format", "json"]) as running:
        response = whoami(running.url, ENV_ADMIN_TOKEN)
        request_id = response.headers["X-Request-ID"]
        assert request_id
        assert running.stop() == 0
        lines = [json.loads(line) for line in running.stderr.splitlines() if line.strip()]

    assert lines
    assert all(isinstance(line, dict) and "level" in line and "message" in line for line in lines)
    for_request = [line for line in lines if line.get("request_id") == request_id]
    assert len(for_request) == 1
    assert for_request[0]["path"] == "/api/v1/users/me"
    assert for_request[0]["status"] == 200
    # The /health polls before it were other requests, with ids of their own.
    assert all(line["request_id"] != request_id for line in lines if line.get("path") == "/health")


def test_sigterm_shuts_down_cleanly_with_exit_code_0(tmp_path: Path, database_url: str) -> None:
    env = environment(database_url, SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN)
    with server_process(tmp_path / "data", env) as running:
        assert "server ready" in running.stderr
        assert "server stopped" not in running.stderr
        assert running.stop() == 0
        assert "server stopped" in running.stderr
        assert "Traceback" not in running.stderr


def test_db_upgrade_then_current_shows_head_and_the_server_starts_without_upgrading(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    store = ["--data-dir", str(data_dir), "--db-url", database_url]
    env = {**os.environ}

    def current() -> dict[str, str]:
        done = subprocess.run(
            shipyard("db", "current", *store), env=env, capture_output=True, text=True, check=True
        )
        return dict(re.findall(r"^(\w+):\s+(\S+)$", done.stdout, re.MULTILINE))

    before = current()
    assert before["current"] == "None"
    assert before["head"] != "None"

    upgraded = subprocess.run(
        shipyard("db", "upgrade", *store), env=env, capture_output=True, text=True, check=False
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database at revision {before['head']}" in upgraded.stderr
    assert current() == {"current": before["head"], "head": before["head"]}

    server_env = environment(database_url, SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN)
    with server_process(data_dir, server_env, ["--no-upgrade"]) as running:
        assert whoami(running.url, ENV_ADMIN_TOKEN).status_code == 200


def test_no_upgrade_on_an_empty_database_refuses_to_start(
    tmp_path: Path, database_url: str
) -> None:
    port = str(free_port())
    process = subprocess.Popen(
        shipyard("server", "--no-upgrade", "--port", port, "--data-dir", str(tmp_path / "data")),
        env=environment(database_url, SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode != 0
    assert "run `shipyard db upgrade`" in stderr
    assert "Traceback" not in stderr


def test_a_database_that_cannot_be_reached_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://shipyard:not-to-be-shown@127.0.0.1:{free_port()}/shipyard"
    data_dir = str(tmp_path / "data")
    for command in (
        ["db", "current", "--db-url", url],
        ["db", "upgrade", "--db-url", url, "--data-dir", data_dir],
        ["server", "--port", str(free_port()), "--db-url", url, "--data-dir", data_dir],
    ):
        done = subprocess.run(
            shipyard(*command),
            env={**os.environ, "SHIPYARD_ADMIN_TOKEN": ENV_ADMIN_TOKEN},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, command
        assert "cannot use the database postgresql+psycopg://shipyard:***@127.0.0.1" in done.stderr
        assert "not-to-be-shown" not in done.stderr
        assert "Traceback" not in done.stderr

    done = subprocess.run(
        shipyard("db", "current", "--db-url", "not a database url"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "the database URL cannot be used" in done.stderr
    assert "Traceback" not in done.stderr
