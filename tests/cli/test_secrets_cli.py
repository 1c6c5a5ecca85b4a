"""``shipyard secret ...`` and ``shipyard admin rotate-master-key`` against real servers.

Happy paths run in-process; errors, the admin command and the server's own start-up on real
processes (see tests/cli/test_cli.py for why). The last test runs a real ``shipyard server``
process logging everything at debug level and looks for a secret's value in what it printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from shipyard.sdk.client import Client
from shipyard.services.master_key import MasterKey, read_key_file
from tests.cli.test_cli import WIDE, as_admin, as_token, invoke, key_values, run, table_rows
from tests.cli.test_server_process import ENV_ADMIN_TOKEN, environment, server_process
from tests.conftest import RunningServer, free_port, unique


def marker() -> str:
    return f"sv-{uuid.uuid4().hex}"


def run_with_input(
    args: list[str], stdin: bytes, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        env={**os.environ, **WIDE, **env},
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_set_list_show_reveal_and_delete(server: RunningServer, admin: Client) -> None:
    ws = admin.workspaces.create(unique()).name
    env, value = as_admin(server), marker()

    made = invoke(["secret", "set", "-n", "db-pass", "-w", ws], env, input=f"{value}\n")
    assert key_values(made.stdout)["name"] == "db-pass"
    assert value not in made.output
    listed = invoke(["secret", "list", "-w", ws], env)
    assert [row["name"] for row in table_rows(listed.stdout)] == ["db-pass"]
    assert value not in listed.output
    shown = invoke(["secret", "show", "-n", "db-pass", "-w", ws, "-o", "json"], env)
    assert json.loads(shown.stdout)["updated_by"] == "admin"
    assert value not in shown.output

    # The final newline of the input is not part of the value; --reveal prints it alone.
    assert admin.workspace(ws).secrets.get_value("db-pass") == value
    revealed = invoke(["secret", "show", "-n", "db-pass", "-w", ws, "--reveal"], env)
    assert revealed.stdout == f"{value}\n"
    as_json = invoke(["secret", "show", "-n", "db-pass", "-w", ws, "--reveal", "-o", "json"], env)
    assert json.loads(as_json.stdout) == {"name": "db-pass", "value": value}

    deleted = invoke(["secret", "delete", "-n", "db-pass", "-w", ws], env)
    assert f"secret db-pass deleted from workspace {ws}" in deleted.stderr
    missing = run(["secret", "show", "-n", "db-pass", "-w", ws], env)
    assert missing.returncode == 1
    assert "secret_not_found" in missing.stderr


def test_set_from_a_file_keeps_it_but_one_final_newline(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    secrets = admin.workspace(ws).secrets
    for content, expected in (
        (
            b"-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
            "-----BEGIN KEY-----\nabc\n-----END KEY-----",
        ),
        (b"windows\r\n", "windows"),
        (b"two newlines\n\n", "two newlines\n"),
        (b"  spaces kept  ", "  spaces kept  "),
    ):
        path = tmp_path / "value"
        path.write_bytes(content)
        invoke(
            ["secret", "set", "-n", "from-file", "-w", ws, "--value-file", str(path)],
            as_admin(server),
        )
        assert secrets.get_value("from-file") == expected


def test_a_value_is_never_taken_from_the_command_line(server: RunningServer, admin: Client) -> None:
    ws = admin.workspaces.create(unique()).name
    positional = run(["secret", "set", "-n", "x", "-w", ws, "a-value"], as_admin(server))
    assert positional.returncode == 2
    as_option = run(["secret", "set", "-n", "x", "-w", ws, "--value", "a-value"], as_admin(server))
    assert as_option.returncode == 2
    assert "No such option" in as_option.stderr
    assert list(admin.workspace(ws).secrets.list()) == []


def test_bad_values_are_refused_before_anything_is_sent(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    not_text, too_big = tmp_path / "binary", tmp_path / "big"
    not_text.write_bytes(b"\xff\xfe\x00")
    too_big.write_bytes(b"x" * (64 * 1024 + 3))
    cases = [
        (["--value-file", str(tmp_path / "missing")], b"", "cannot read"),
        (["--value-file", str(not_text)], b"", "not UTF-8"),
        (["--value-file", str(too_big)], b"", "over 65536 bytes"),
        ([], b"", "empty"),
        ([], b"\n", "empty"),
    ]
    for extra, stdin, message in cases:
        done = run_with_input(
            ["secret", "set", "-n", "x", "-w", ws, *extra], stdin, as_admin(server)
        )
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr, (extra, done.stderr)
        assert "Traceback" not in done.stderr
    assert list(admin.workspace(ws).secrets.list()) == []


def test_the_servers_refusals_are_messages(server: RunningServer, admin: Client) -> None:
    ws = admin.workspaces.create(unique()).name
    admin.workspace(ws).secrets.set("kept", "value")
    scientist = admin.users.create(unique("ds")).name
    admin.role_assignments.create(role="Data Scientist", user=scientist, workspace=ws)
    token = admin.tokens.create("cli", user=scientist).token
    refused = run(["secret", "show", "-n", "kept", "-w", ws, "--reveal"], as_token(server, token))
    assert refused.returncode == 1
    assert "[forbidden]" in refused.stderr
    assert "value" not in refused.stdout
    listed = run(["secret", "list", "-w", ws, "-o", "json"], as_token(server, token))
    assert [s["name"] for s in json.loads(listed.stdout)] == ["kept"]
    bad_name = run_with_input(["secret", "set", "-n", "no good", "-w", ws], b"v", as_admin(server))
    assert bad_name.returncode == 1
    assert "[invalid_name]" in bad_name.stderr


# --- shipyard admin rotate-master-key -----------------------------------------------------


def rotate(server: RunningServer, *extra: str) -> subprocess.CompletedProcess[str]:
    store = ["--data-dir", str(server.settings.data_dir), "--db-url", server.settings.database_url]
    return run(["admin", "rotate-master-key", *store, *extra])


def test_rotate_master_key_while_the_server_runs(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    secrets = admin.workspace(ws).secrets
    secrets.set("before", "old value")
    key_file = server.settings.data_dir / "master.key"
    old = read_key_file(key_file)

    done = rotate(server)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted" in done.stderr
    new = read_key_file(key_file)
    assert new != old
    assert new.key_id in done.stderr
    assert new.encode() not in done.stderr + done.stdout  # the key itself is never printed
    assert key_file.stat().st_mode & 0o777 == 0o600
    # The running server reads the new key when it meets it, and writes with it.
    assert secrets.get_value("before") == "old value"
    assert secrets.set("after", "new value").key_id == new.key_id
    assert secrets.get("before").key_id == new.key_id

    # --new-key-file: the operator's own key, which must be private too.
    chosen = MasterKey.generate()
    given = tmp_path / "chosen.key"
    given.write_text(chosen.encode() + "\n")
    given.chmod(0o644)
    exposed = rotate(server, "--new-key-file", str(given))
    assert exposed.returncode == 1
    assert "chmod 600" in exposed.stderr
    given.chmod(0o600)
    assert rotate(server, "--new-key-file", str(given)).returncode == 0
    assert read_key_file(key_file) == chosen
    assert secrets.get_value("after") == "new value"
    reused = rotate(server, "--new-key-file", str(given))
    assert reused.returncode == 1
    assert "already in use" in reused.stderr


def test_the_server_refuses_to_start_with_an_exposed_or_broken_key(
    tmp_path: Path, database_url: str
) -> None:
    for content, message in (
        (MasterKey.generate().encode(), "chmod 600"),
        ("junk", "does not hold"),
    ):
        data_dir = tmp_path / uuid.uuid4().hex
        data_dir.mkdir()
        key_file = data_dir / "master.key"
        key_file.write_text(content)
        key_file.chmod(0o644 if message == "chmod 600" else 0o600)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "server",
                "--port",
                str(free_port()),
                "--data-dir",
                str(data_dir),
            ],
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
        assert process.returncode == 1, stderr
        assert message in stderr
        assert "Traceback" not in stderr
        if message == "does not hold":
            assert "junk" not in stderr


def test_a_server_process_logging_everything_never_prints_a_value(
    tmp_path: Path, database_url: str
) -> None:
    value = marker()
    env = environment(database_url, SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN)
    args = ["--log-level", "debug", "--log-format", "json"]
    with server_process(tmp_path / "data", env, args) as running:
        with Client(running.url, ENV_ADMIN_TOKEN) as client:
            ws = client.workspaces.create(unique()).name
            secrets = client.workspace(ws).secrets
            secrets.set("logged", value)
            assert secrets.get_value("logged") == value
            cli_env = {"SHIPYARD_URL": running.url, "SHIPYARD_TOKEN": ENV_ADMIN_TOKEN}
            shown = run(["secret", "show", "-n", "logged", "-w", ws, "--reveal"], cli_env)
            assert shown.stdout == f"{value}\n"
            refused = run_with_input(
                ["secret", "set", "-n", "bad name", "-w", ws], value.encode(), cli_env
            )
            assert refused.returncode == 1
            assert value not in refused.stderr
        assert running.stop() == 0
        logged = running.stderr
    assert '"path": "/api/v1/workspaces/' in logged  # the requests were logged
    assert value not in logged
