"""The ``shipyard`` client commands against a real server.

Happy paths run in-process with click's ``CliRunner`` (an unexpected error fails the test with
its traceback). Errors and exit codes are checked on a real ``python -m shipyard`` process,
because ``shipyard.cli.main.main`` is what turns errors into messages and exit codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from shipyard.cli.main import cli
from shipyard.domain.errors import NotFoundError
from shipyard.sdk.client import Client
from tests.conftest import ADMIN_TOKEN, RunningServer, free_port, unique

# A wide terminal, so rich never folds a cell that a test reads back.
WIDE = {"COLUMNS": "200"}

AZURE_WORKSPACE = """\
$schema: https://azuremlschemas.azureedge.net/latest/workspace.schema.json
name: {name}
display_name: Churn models
description: From the file
location: eastus
hbi_workspace: false
tags:
  team: cv
  owner: alice
"""


def invoke(args: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: Any) -> Result:
    """Run the CLI in-process; it must succeed."""
    result = CliRunner().invoke(
        cli, list(args), env={**WIDE, **(env or {})}, catch_exceptions=False, **kwargs
    )
    assert result.exit_code == 0, result.output
    return result


def run(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m shipyard`` as its own process, stdin not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        env={**os.environ, **WIDE, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_token(server: RunningServer, token: str) -> dict[str, str]:
    return {"SHIPYARD_URL": server.url, "SHIPYARD_TOKEN": token}


def as_admin(server: RunningServer) -> dict[str, str]:
    return as_token(server, ADMIN_TOKEN)


def rest(server: RunningServer, path: str, token: str = ADMIN_TOKEN) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"})


def config_file() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "shipyard" / "config.yaml"


def key_values(table: str) -> dict[str, str]:
    """A one-item table (``-o table`` of show/create) as {field: cell}."""
    pairs = {}
    for line in table.splitlines():
        if line.strip():
            key, _, value = line.strip().partition(" ")
            pairs[key] = value.strip()
    return pairs


def table_rows(table: str) -> list[dict[str, str]]:
    """A list table (``-o table`` of list commands) as one {column: cell} per row."""
    header = next(line for line in table.splitlines() if line.startswith("┃"))
    columns = [cell.strip() for cell in header.strip("┃").split("┃")]
    return [
        dict(zip(columns, (cell.strip() for cell in line.strip("│").split("│")), strict=True))
        for line in table.splitlines()
        if line.startswith("│")
    ]


# --- login and the profile ---------------------------------------------------------------


def test_login_saves_a_private_profile_that_later_commands_use(
    server: RunningServer, admin: Client
) -> None:
    assert "SHIPYARD_URL" not in os.environ
    result = invoke(["login", "--url", server.url, "--token", ADMIN_TOKEN, "-o", "json"])
    assert json.loads(result.stdout)["name"] == "admin"
    assert str(config_file()) in result.stderr

    assert config_file().stat().st_mode & 0o777 == 0o600
    saved = yaml.safe_load(config_file().read_text())
    assert saved["current"] == "default"
    assert saved["profiles"]["default"] == {"url": server.url, "token": ADMIN_TOKEN}

    # No SHIPYARD_* variables: the saved profile is what reaches the server.
    name = unique()
    invoke(["workspace", "create", "-n", name])
    assert admin.workspaces.get(name).created_by == "admin"
    process = run(["user", "show", "-o", "json"])
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["name"] == "admin"


def test_login_asks_for_the_token_without_echoing_it(server: RunningServer) -> None:
    result = invoke(["login", "--url", server.url], input=f"{ADMIN_TOKEN}\n")
    assert "Token" in result.output
    assert ADMIN_TOKEN not in result.output
    assert yaml.safe_load(config_file().read_text())["profiles"]["default"]["token"] == ADMIN_TOKEN


def test_login_with_a_wrong_token_fails_with_the_servers_message_and_saves_nothing(
    server: RunningServer,
) -> None:
    refusal = rest(server, "/api/v1/users/me", token="shp_wrong-token")
    assert refusal.status_code == 401

    process = run(["login", "--url", server.url, "--token", "shp_wrong-token"])
    assert process.returncode == 1
    assert refusal.json()["detail"] in process.stderr
    assert process.stdout == ""
    assert not config_file().exists()

    # Nor does a failed login overwrite a profile that works.
    invoke(["login", "--url", server.url, "--token", ADMIN_TOKEN])
    before = config_file().read_text()
    assert run(["login", "--url", server.url, "--token", "shp_wrong-token"]).returncode == 1
    assert config_file().read_text() == before


def test_without_a_server_url_the_cli_says_how_to_set_one() -> None:
    process = run(["workspace", "list"])
    assert process.returncode == 1
    assert "SHIPYARD_URL" in process.stderr
    assert "shipyard login" in process.stderr


def test_an_unreachable_server_is_an_error_not_a_traceback() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    process = run(["workspace", "list"], env={"SHIPYARD_URL": url, "SHIPYARD_TOKEN": "x"})
    assert process.returncode == 1
    assert f"cannot reach the Shipyard server at {url}" in process.stderr
    assert "Traceback" not in process.stderr


# --- workspaces: the happy paths ----------------------------------------------------------


def test_create_from_an_azure_file_skips_azure_only_fields_and_applies_set(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    name = unique()
    path = tmp_path / "workspace.yml"
    path.write_text(AZURE_WORKSPACE.format(name=name))

    result = invoke(
        [
            "workspace",
            "create",
            "-f",
            str(path),
            "--set",
            "tags.team=nlp",
            "--set",
            "description=Set on the command line",
            "-o",
            "json",
        ],
        env=as_admin(server),
    )

    created = json.loads(result.stdout)
    assert created["name"] == name
    assert created["display_name"] == "Churn models"
    assert created["description"] == "Set on the command line"
    assert created["tags"] == {"team": "nlp", "owner": "alice"}
    notes = result.stderr.splitlines()
    assert f"note: ignoring Azure-only field 'location' in {path}" in notes
    assert f"note: ignoring Azure-only field 'hbi_workspace' in {path}" in notes
    assert len(notes) == 2  # $schema is dropped silently; name, tags... are not "ignored"

    stored = admin.workspaces.get(name)
    assert (stored.description, stored.tags) == (created["description"], created["tags"])


def test_create_from_options_without_a_file(server: RunningServer, admin: Client) -> None:
    name = unique()
    result = invoke(
        [
            "workspace",
            "create",
            "--name",
            name,
            "--description",
            "Scratch space",
            "--tags",
            "team=nlp",
            "-o",
            "json",
        ],
        env=as_admin(server),
    )
    assert json.loads(result.stdout)["name"] == name
    stored = admin.workspaces.get(name)
    assert stored.description == "Scratch space"
    assert stored.tags == {"team": "nlp"}
    assert stored.environment_registry.shared is True


def test_show_prints_the_rest_representation_as_json_yaml_or_table(
    server: RunningServer, admin: Client
) -> None:
    name = unique()
    admin.workspaces.create(name, description="Churn", tags={"team": "nlp", "owner": "alice"})
    expected = rest(server, f"/api/v1/workspaces/{name}").json()

    as_json = invoke(["workspace", "show", "-n", name, "-o", "json"], env=as_admin(server))
    assert json.loads(as_json.stdout) == expected

    as_yaml = invoke(["workspace", "show", "-n", name, "-o", "yaml"], env=as_admin(server))
    assert yaml.safe_load(as_yaml.stdout) == expected

    as_table = invoke(["workspace", "show", "-n", name], env=as_admin(server))
    cells = key_values(as_table.stdout)
    assert cells["name"] == name
    assert cells["description"] == "Churn"
    assert cells["tags"] == ", ".join(f"{k}={v}" for k, v in expected["tags"].items())
    assert cells["storage.default_datastore"] == expected["storage"]["default_datastore"]
    assert cells["environment_registry.name"] == expected["environment_registry"]["name"]


def test_list_shows_the_workspaces(server: RunningServer, admin: Client) -> None:
    names = [unique(), unique()]
    for name in names:
        admin.workspaces.create(name, description=f"about {name}")

    listed = json.loads(invoke(["workspace", "list", "-o", "json"], env=as_admin(server)).stdout)
    by_name = {item["name"]: item for item in listed}
    for name in names:
        assert by_name[name] == rest(server, f"/api/v1/workspaces/{name}").json()

    rows = table_rows(invoke(["workspace", "list"], env=as_admin(server)).stdout)
    table = {row["name"]: row for row in rows}
    for name in names:
        assert table[name]["description"] == f"about {name}"
        assert table[name]["created_by"] == "admin"


def test_update_changes_only_what_is_given(server: RunningServer, admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name, description="old", tags={"team": "nlp", "owner": "alice"})

    result = invoke(
        ["workspace", "update", "-n", name, "--description", "new", "-o", "json"],
        env=as_admin(server),
    )
    assert json.loads(result.stdout)["description"] == "new"
    assert admin.workspaces.get(name).tags == {"team": "nlp", "owner": "alice"}

    result = invoke(
        ["workspace", "update", "-n", name, "--set", "tags.x=1", "-o", "json"],
        env=as_admin(server),
    )
    assert json.loads(result.stdout)["tags"] == {"team": "nlp", "owner": "alice", "x": "1"}
    stored = admin.workspaces.get(name)
    assert stored.tags == {"team": "nlp", "owner": "alice", "x": "1"}
    assert stored.description == "new"


def test_soft_delete_then_recover(server: RunningServer, admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name)

    deleted = invoke(["workspace", "delete", "-n", name], env=as_admin(server))
    assert f"workspace {name} deleted (recoverable)" in deleted.stderr
    live = json.loads(invoke(["workspace", "list", "-o", "json"], env=as_admin(server)).stdout)
    assert name not in {item["name"] for item in live}
    gone = invoke(["workspace", "list", "--deleted", "-o", "json"], env=as_admin(server))
    by_name = {item["name"]: item for item in json.loads(gone.stdout)}
    assert by_name[name]["deleted_at"] is not None
    table = invoke(["workspace", "list", "--deleted"], env=as_admin(server))
    assert name in {row["name"] for row in table_rows(table.stdout)}

    recovered = invoke(["workspace", "recover", "-n", name, "-o", "json"], env=as_admin(server))
    assert json.loads(recovered.stdout)["deleted_at"] is None
    live = json.loads(invoke(["workspace", "list", "-o", "json"], env=as_admin(server)).stdout)
    assert name in {item["name"] for item in live}


def test_permanent_delete_needs_yes_when_stdin_is_not_a_terminal(
    server: RunningServer, admin: Client
) -> None:
    name = unique()
    admin.workspaces.create(name)

    refused = run(["workspace", "delete", "-n", name, "--permanently-delete"], as_admin(server))
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert admin.workspaces.get(name).name == name  # still there

    result = invoke(
        ["workspace", "delete", "-n", name, "--permanently-delete", "--yes"], env=as_admin(server)
    )
    assert f"workspace {name} permanently deleted" in result.stderr
    with pytest.raises(NotFoundError):
        admin.workspaces.get(name)
    assert name not in {w.name for w in admin.workspaces.list(deleted=True)}


# --- workspaces: errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "expected"),
    [
        pytest.param(
            "name: {name}\ntags:\n  team: nlp\n  - oops\n", 4, "not valid YAML", id="syntax"
        ),
        pytest.param(
            "$schema: x\nname: {name}\ndescription: fine\nextra_field: 1\n",
            4,
            "field 'extra_field'",
            id="unknown-field",
        ),
        pytest.param(
            "description: fine\ntags:\n  team: nlp\nname: Not_A_Name\n",
            4,
            "field 'name'",
            id="invalid-name",
        ),
    ],
)
def test_a_bad_file_is_reported_with_file_line_and_field(
    server: RunningServer, tmp_path: Path, content: str, line: int, expected: str
) -> None:
    name = unique()
    path = tmp_path / "bad.yml"
    path.write_text(content.format(name=name))

    process = run(["workspace", "create", "-f", str(path)], as_admin(server))

    assert process.returncode == 1
    error = process.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {path}:{line}:")
    assert expected in error
    assert process.stdout == ""
    if "{name}" in content:  # the file named a valid workspace: it was not created
        assert rest(server, f"/api/v1/workspaces/{name}").status_code == 404


def test_a_missing_workspace_exits_1_with_the_servers_message(server: RunningServer) -> None:
    name = unique("missing")
    process = run(["workspace", "show", "-n", name], as_admin(server))
    assert process.returncode == 1
    assert "does not exist" in process.stderr
    assert name in process.stderr
    assert process.stdout == ""


def test_a_duplicate_name_exits_1_and_says_it_already_exists(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    name = unique()
    admin.workspaces.create(name)

    process = run(["workspace", "create", "-n", name], as_admin(server))
    assert process.returncode == 1
    assert f"workspace '{name}' already exists" in process.stderr

    # From a file, the error points at the name's line and keeps the server's error code.
    path = tmp_path / "workspace.yml"
    path.write_text(AZURE_WORKSPACE.format(name=name))
    process = run(["workspace", "create", "-f", str(path)], as_admin(server))
    assert process.returncode == 1
    assert f"{path}:2: field 'name': workspace '{name}' already exists" in process.stderr
    assert "[workspace_exists]" in process.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["workspace", "create"], "give the workspace a name"),
        (["workspace", "show"], "Missing option '-n' / '--name'"),
        (["workspace", "frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(server: RunningServer, args: list[str], expected: str) -> None:
    process = run(args, as_admin(server))
    assert process.returncode == 2
    assert expected in process.stderr


# --- users and tokens ---------------------------------------------------------------------


def test_user_create_list_show_disable_enable(server: RunningServer) -> None:
    name = unique("user")
    created = invoke(
        [
            "user",
            "create",
            "-n",
            name,
            "--display-name",
            "Ada L",
            "--email",
            "ada@example.com",
            "-o",
            "json",
        ],
        env=as_admin(server),
    )
    user = json.loads(created.stdout)
    assert (user["name"], user["email"], user["is_admin"], user["disabled"]) == (
        name,
        "ada@example.com",
        False,
        False,
    )

    listed = json.loads(invoke(["user", "list", "-o", "json"], env=as_admin(server)).stdout)
    assert {"admin", name} <= {u["name"] for u in listed}
    rows = {r["name"]: r for r in table_rows(invoke(["user", "list"], env=as_admin(server)).stdout)}
    assert rows[name]["email"] == "ada@example.com"

    shown = invoke(["user", "show", "-n", name, "-o", "yaml"], env=as_admin(server))
    assert yaml.safe_load(shown.stdout) == rest(server, f"/api/v1/users/{name}").json()
    me = invoke(["user", "show", "-o", "json"], env=as_admin(server))
    assert json.loads(me.stdout)["name"] == "admin"

    issued = invoke(
        ["token", "create", "-n", "laptop", "--user", name, "-o", "json"], env=as_admin(server)
    )
    token = json.loads(issued.stdout)["token"]
    as_user = as_token(server, token)
    assert json.loads(invoke(["user", "show", "-o", "json"], env=as_user).stdout)["name"] == name

    disabled = invoke(["user", "disable", "-n", name, "-o", "json"], env=as_admin(server))
    assert json.loads(disabled.stdout)["disabled"] is True
    refusal = rest(server, "/api/v1/users/me", token=token)
    assert refusal.status_code == 401
    process = run(["user", "show"], as_user)
    assert process.returncode == 1
    assert refusal.json()["detail"] in process.stderr

    enabled = invoke(["user", "enable", "-n", name], env=as_admin(server))
    assert key_values(enabled.stdout)["disabled"] == "False"
    assert json.loads(invoke(["user", "show", "-o", "json"], env=as_user).stdout)["name"] == name


def test_non_admins_cannot_manage_users(server: RunningServer, admin: Client) -> None:
    name = unique("user")
    admin.users.create(name)
    token = admin.tokens.create("t", user=name).token
    other = unique("user")
    refusal = httpx.post(
        f"{server.url}/api/v1/users",
        json={"name": other},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refusal.status_code == 403

    process = run(["user", "create", "-n", other], as_token(server, token))
    assert process.returncode == 1
    assert refusal.json()["detail"] in process.stderr
    with pytest.raises(NotFoundError):
        admin.users.get(other)


def test_token_create_list_revoke(server: RunningServer) -> None:
    shown_once = invoke(["token", "create", "-n", "ci"], env=as_admin(server))
    cells = key_values(shown_once.stdout)
    table_token = cells["token"]
    assert table_token.startswith(cells["prefix"])
    assert "will not be shown again" in shown_once.stderr
    assert rest(server, "/api/v1/users/me", token=table_token).status_code == 200

    issued = invoke(["token", "create", "-n", "ci-json", "-o", "json"], env=as_admin(server))
    created = json.loads(issued.stdout)
    token = created["token"]
    assert rest(server, "/api/v1/users/me", token=token).status_code == 200

    for output in ("json", "yaml", "table"):
        listing = invoke(["token", "list", "-o", output], env=as_admin(server)).stdout
        assert token not in listing
        assert table_token not in listing
        assert created["prefix"] in listing
    items = json.loads(invoke(["token", "list", "-o", "json"], env=as_admin(server)).stdout)
    assert created["id"] in {item["id"] for item in items}
    assert all("token" not in item for item in items)

    revoked = invoke(["token", "revoke", "--id", created["id"], "-o", "json"], env=as_admin(server))
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    refusal = rest(server, "/api/v1/users/me", token=token)
    assert refusal.status_code == 401
    process = run(["user", "show"], as_token(server, token))
    assert process.returncode == 1
    assert refusal.json()["detail"] in process.stderr
    # Revoking one token leaves the others alone.
    assert rest(server, "/api/v1/users/me", token=table_token).status_code == 200


def test_an_error_about_a_flag_is_not_blamed_on_the_file(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    taken = unique()
    admin.workspaces.create(taken)
    path = tmp_path / "workspace.yml"
    path.write_text(AZURE_WORKSPACE.format(name=unique()))
    process = run(["workspace", "create", "-f", str(path), "-n", taken], as_admin(server))
    assert process.returncode == 1
    assert f"workspace '{taken}' already exists" in process.stderr
    assert f"{path}:" not in process.stderr


def test_update_sends_only_the_fields_that_changed(server: RunningServer, admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name, description="first", tags={"team": "nlp"})
    # Another client changes the description after this CLI call would have read it; a
    # --set on tags must not write the old description back.
    invoke(["workspace", "update", "-n", name, "--set", "tags.x=1"], env=as_admin(server))
    admin.workspaces.update(name, description="second")
    invoke(["workspace", "update", "-n", name, "--set", "tags.y=2"], env=as_admin(server))
    stored = admin.workspaces.get(name)
    assert stored.description == "second"
    assert stored.tags == {"team": "nlp", "x": "1", "y": "2"}


def test_update_from_a_file_with_a_field_update_cannot_change(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    name = unique()
    admin.workspaces.create(name)
    path = tmp_path / "update.yml"
    path.write_text("description: ok\nstorage:\n  uri: /tmp\n")
    process = run(["workspace", "update", "-n", name, "-f", str(path)], as_admin(server))
    assert process.returncode == 1
    assert f"{path}:2: field 'storage'" in process.stderr
    assert "Traceback" not in process.stderr
