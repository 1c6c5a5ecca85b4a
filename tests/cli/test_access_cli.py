"""The access-control commands against a real server: group, service-principal, role,
role assignment and audit. Happy paths run in-process; errors on a real process (see
tests/cli/test_cli.py for why)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from shipyard.domain.errors import ForbiddenError, NotFoundError, UnauthenticatedError
from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

ROLE_FILE = """\
name: {name}
description: Submit and watch jobs
actions:
  - workspaces/read
  - workspaces/jobs/*
not_actions:
  - workspaces/jobs/delete
assignable_scopes: [workspace]
"""


def new_user(admin: Client) -> str:
    return admin.users.create(unique("user")).name


# --- groups -------------------------------------------------------------------------------


def test_group_commands(server: RunningServer, admin: Client) -> None:
    env = as_admin(server)
    name, alice, bob = unique("grp"), new_user(admin), new_user(admin)

    created = json.loads(
        invoke(
            ["group", "create", "-n", name, "--description", "The ML team", "-o", "json"], env
        ).stdout
    )
    assert (created["name"], created["description"]) == (name, "The ML team")
    assert created["owners"] == [{"name": "admin", "kind": "user"}]

    invoke(["group", "add-member", "-n", name, "--member", alice], env)
    added = json.loads(
        invoke(
            ["group", "add-member", "-n", name, "--member", bob, "--owner", "-o", "json"], env
        ).stdout
    )
    assert added["members"] == [{"name": alice, "kind": "user"}]
    assert {o["name"] for o in added["owners"]} == {"admin", bob}
    assert admin.groups.get(name).model_dump(mode="json") == added  # -o json is the REST body

    shown = key_values(invoke(["group", "show", "-n", name], env).stdout)
    assert shown["members"] == f"{alice} (user)"
    listed = {r["name"]: r for r in table_rows(invoke(["group", "list"], env).stdout)}
    assert listed[name]["description"] == "The ML team"
    assert listed[name]["members"] == f"{alice} (user)"

    removed = yaml.safe_load(
        invoke(
            ["group", "remove-member", "-n", name, "--member", bob, "--owner", "-o", "yaml"], env
        ).stdout
    )
    assert [o["name"] for o in removed["owners"]] == ["admin"]
    invoke(["group", "remove-member", "-n", name, "--member", alice], env)
    assert admin.groups.get(name).members == []

    result = invoke(["group", "delete", "-n", name], env)
    assert f"group {name} deleted" in result.stderr
    with pytest.raises(NotFoundError):
        admin.groups.get(name)


def test_a_duplicate_group_exits_1_with_the_servers_message(
    server: RunningServer, admin: Client
) -> None:
    name = admin.groups.create(unique("grp")).name
    process = run(["group", "create", "-n", name], as_admin(server))
    assert process.returncode == 1
    assert f"error: group '{name}' already exists" in process.stderr
    assert "[group_exists]" in process.stderr
    assert process.stdout == ""


# --- service principals -------------------------------------------------------------------


def test_service_principal_commands(server: RunningServer, admin: Client) -> None:
    env = as_admin(server)
    name = unique("sp")

    created = json.loads(
        invoke(
            ["service-principal", "create", "-n", name, "--description", "CI", "-o", "json"], env
        ).stdout
    )
    assert (created["name"], created["description"], created["disabled"]) == (name, "CI", False)
    shown = key_values(invoke(["service-principal", "show", "-n", name], env).stdout)
    assert shown["name"] == name
    listed = json.loads(invoke(["service-principal", "list", "-o", "json"], env).stdout)
    assert name in [sp["name"] for sp in listed]

    result = invoke(
        [
            "service-principal",
            "token",
            "create",
            "-n",
            name,
            "--token-name",
            "nightly",
            "--expires-in-days",
            "7",
        ],
        env,
    )
    issued = key_values(result.stdout)
    assert (issued["name"], issued["user"]) == ("nightly", name)
    assert "will not be shown again" in result.stderr
    with Client(server.url, issued["token"]) as robot:
        assert robot.users.me().name == name
        invoke(["service-principal", "delete", "-n", name], env)
        with pytest.raises(UnauthenticatedError):
            robot.users.me()


def test_a_service_principal_token_for_a_user_is_refused(
    server: RunningServer, admin: Client
) -> None:
    user = new_user(admin)
    process = run(["service-principal", "token", "create", "-n", user], as_admin(server))
    assert process.returncode == 1
    assert f"service principal '{user}' does not exist" in process.stderr
    assert process.stdout == ""
    assert list(admin.tokens.list(user=user)) == []


# --- roles --------------------------------------------------------------------------------


def test_role_commands(server: RunningServer, admin: Client, tmp_path: Path) -> None:
    env = as_admin(server)
    rows = {r["name"]: r for r in table_rows(invoke(["role", "list"], env).stdout)}
    assert rows["Owner"]["builtin"] == "True"
    assert rows["Workspace Creator"]["assignable_scopes"] == "global"

    shown = json.loads(invoke(["role", "show", "-n", "Data Scientist", "-o", "json"], env).stdout)
    assert shown == admin.roles.get("Data Scientist").model_dump(mode="json")

    name = f"Job Runner {unique('r')}"
    path = tmp_path / "role.yml"
    path.write_text(ROLE_FILE.format(name=name))
    created = json.loads(
        invoke(
            ["role", "create", "-f", str(path), "--set", "description=From --set", "-o", "json"],
            env,
        ).stdout
    )
    assert created["name"] == name
    assert created["description"] == "From --set"
    assert created["actions"] == ["workspaces/read", "workspaces/jobs/*"]
    assert created["not_actions"] == ["workspaces/jobs/delete"]
    assert created["assignable_scopes"] == ["workspace"]
    assert created["builtin"] is False

    from_flags = unique("role")
    invoke(
        [
            "role",
            "create",
            "-n",
            from_flags,
            "--action",
            "workspaces/read",
            "--not-action",
            "workspaces/secrets/read",
            "--assignable-scope",
            "global",
            "--description",
            "flags",
        ],
        env,
    )
    assert admin.roles.get(from_flags).assignable_scopes == ["global"]

    for role in (name, from_flags):
        assert f"role {role} deleted" in invoke(["role", "delete", "-n", role], env).stderr
        with pytest.raises(NotFoundError):
            admin.roles.get(role)


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "code"),
    [
        pytest.param("workspaces/jobs/*", "nothing/real", 5, "actions.1", "unknown_action"),
        pytest.param("[workspace]", "[planet]", 8, "assignable_scopes.0", "invalid_field"),
        pytest.param("not_actions:", "notactions:", 6, "notactions", "unknown_field"),
    ],
)
def test_a_bad_role_file_names_file_line_and_field(
    server: RunningServer,
    admin: Client,
    tmp_path: Path,
    old: str,
    new: str,
    line: int,
    field: str,
    code: str,
) -> None:
    name = unique("role")
    path = tmp_path / "role.yml"
    text = ROLE_FILE.format(name=name)
    assert old in text
    path.write_text(text.replace(old, new))

    process = run(["role", "create", "-f", str(path)], as_admin(server))

    assert process.returncode == 1
    error = process.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {path}:{line}: field '{field}': ")
    assert error.endswith(f"[{code}]")
    assert process.stdout == ""
    with pytest.raises(NotFoundError):
        admin.roles.get(name)


# --- role assignments ---------------------------------------------------------------------


def test_role_assignment_commands(server: RunningServer, admin: Client) -> None:
    env = as_admin(server)
    alice = new_user(admin)
    workspace = admin.workspaces.create(unique()).name

    created = json.loads(
        invoke(
            [
                "role",
                "assignment",
                "create",
                "--role",
                "Data Scientist",
                "--user",
                alice,
                "--workspace",
                workspace,
                "-o",
                "json",
            ],
            env,
        ).stdout
    )
    assert (created["role"], created["principal_name"], created["workspace"]) == (
        "Data Scientist",
        alice,
        workspace,
    )
    rows = table_rows(invoke(["role", "assignment", "list", "-w", workspace], env).stdout)
    assert {"id": created["id"], "role": "Data Scientist", "principal_name": alice}.items() <= (
        next(r for r in rows if r["id"] == created["id"]).items()
    )
    on_server = json.loads(
        invoke(["role", "assignment", "list", "--global", "-o", "json"], env).stdout
    )
    assert [(a["role"], a["scope"]) for a in on_server if a["principal_name"] == alice] == [
        ("Workspace Creator", "/")
    ]

    result = invoke(
        ["role", "assignment", "delete", "--id", created["id"], "--workspace", workspace], env
    )
    assert f"role assignment {created['id']} deleted" in result.stderr
    assert created["id"] not in [a.id for a in admin.role_assignments.list(workspace)]


def test_role_assignment_create_for_groups_and_service_principals_globally(
    server: RunningServer, admin: Client
) -> None:
    env = as_admin(server)
    group = admin.groups.create(unique("grp")).name
    robot = admin.service_principals.create(unique("sp")).name
    for flag, who in (("--group", group), ("--service-principal", robot)):
        args = ["role", "assignment", "create", "--role", "Reader", flag, who, "--global"]
        created = yaml.safe_load(invoke([*args, "-o", "yaml"], env).stdout)
        assert (created["principal_name"], created["scope"]) == (who, "/")
    kinds = {a.principal_name: a.principal_type for a in admin.role_assignments.list()}
    assert (kinds[group], kinds[robot]) == ("group", "service_principal")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--role", "Reader", "--user", "x"], "--workspace NAME, --registry NAME, or --global"),
        (
            ["--role", "Reader", "--user", "x", "-w", "w", "--global"],
            "not --workspace and --global",
        ),
        (["--role", "Reader", "--global"], "exactly one of --user"),
        (["--role", "Reader", "--user", "x", "--group", "g", "--global"], "exactly one of"),
    ],
)
def test_role_assignment_create_usage_errors_exit_2(
    server: RunningServer, args: list[str], expected: str
) -> None:
    process = run(["role", "assignment", "create", *args], as_admin(server))
    assert process.returncode == 2
    assert expected in process.stderr


def test_an_unknown_role_exits_1_with_the_servers_message(
    server: RunningServer, admin: Client
) -> None:
    before = admin.role_assignments.list()
    process = run(
        ["role", "assignment", "create", "--role", "No Such Role", "--user", "admin", "--global"],
        as_admin(server),
    )
    assert process.returncode == 1
    assert "error: role 'No Such Role' does not exist [role_not_found]" in process.stderr
    assert admin.role_assignments.list() == before


# --- audit --------------------------------------------------------------------------------


def test_audit_list(server: RunningServer, admin: Client) -> None:
    env = as_admin(server)
    alice = new_user(admin)
    token = admin.tokens.create("cli-audit", user=alice).token
    workspace = admin.workspaces.create(unique()).name
    with Client(server.url, token) as as_alice, pytest.raises(ForbiddenError):
        as_alice.groups.create(unique("grp"))
    admin.workspaces.update(workspace, description="audited")

    def events(*args: str) -> list[dict[str, object]]:
        result = invoke(["audit", "list", *args, "-o", "json"], env)
        parsed: list[dict[str, object]] = json.loads(result.stdout)
        return parsed

    # The server writes an event just after its response: wait for the last two.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        events("-w", workspace) and events("--principal", alice)
    ):
        time.sleep(0.05)

    denied = events("--principal", alice, "--outcome", "denied", "--since", "1h")
    assert [(e["action"], e["status"]) for e in denied] == [("groups/write", 403)]
    assert events("--principal", alice, "--until", "1h") == []
    assert events("--principal", alice, "--since", "2000-01-01T00:00:00") == denied
    in_workspace = events("-w", workspace, "--action", "workspaces/write")
    assert [(e["principal"], e["workspace"]) for e in in_workspace] == [("admin", workspace)]
    assert len(events("--max-items", "2")) == 2

    rows = table_rows(invoke(["audit", "list", "--principal", alice], env).stdout)
    assert [(r["action"], r["outcome"]) for r in rows] == [("groups/write", "denied")]


def test_a_bad_audit_time_exits_1(server: RunningServer) -> None:
    process = run(["audit", "list", "--since", "last tuesday"], as_admin(server))
    assert process.returncode == 1
    assert "since 'last tuesday' is not an ISO 8601 time" in process.stderr


def run_with_stdin(
    args: list[str], env: dict[str, str], stdin: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_user_passwords_come_from_stdin_and_allow_a_studio_login(server: RunningServer) -> None:
    name = unique("user")
    password = "a long enough passphrase"
    created = run_with_stdin(
        ["user", "create", "-n", name, "--password-stdin", "-o", "json"],
        as_admin(server),
        password + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["has_password"] is True
    assert password not in created.stdout + created.stderr
    login = httpx.post(f"{server.url}/api/v1/sessions", json={"name": name, "password": password})
    assert login.status_code == 201

    short = run_with_stdin(["user", "set-password", "-n", name], as_admin(server), "short\n")
    assert short.returncode == 1
    assert "at least" in short.stderr
    changed = run_with_stdin(
        ["user", "set-password", "-n", name], as_admin(server), "another passphrase!\n"
    )
    assert changed.returncode == 0, changed.stderr
    relogin = httpx.post(
        f"{server.url}/api/v1/sessions", json={"name": name, "password": "another passphrase!"}
    )
    assert relogin.status_code == 201


def test_a_user_changes_their_own_password(server: RunningServer, admin: Client) -> None:
    name = unique("user")
    admin.users.create(name, password="the first passphrase")
    token = admin.tokens.create("t", user=name).token
    env = {"SHIPYARD_URL": server.url, "SHIPYARD_TOKEN": token}
    wrong = run_with_stdin(["user", "change-password"], env, "nope\na second passphrase\n")
    assert wrong.returncode == 1
    assert "current password" in wrong.stderr
    done = run_with_stdin(
        ["user", "change-password", "-o", "json"], env, "the first passphrase\na second one!!\n"
    )
    assert done.returncode == 0, done.stderr
    login = httpx.post(
        f"{server.url}/api/v1/sessions", json={"name": name, "password": "a second one!!"}
    )
    assert login.status_code == 201
