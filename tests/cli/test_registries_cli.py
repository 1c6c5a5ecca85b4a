"""``shipyard registry ...`` and ``shipyard role assignment ... --registry`` against a real
server. Happy paths run in-process; errors and exit codes on a real process (see
tests/cli/test_cli.py for why)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shipyard.domain.errors import NotFoundError
from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

AZURE_REGISTRY = """\
$schema: https://azuremlschemas.azureedge.net/latest/registry.schema.json
name: {name}
description: Models every team may use
tags:
  team: platform
location: eastus
replication_locations:
  - location: eastus
  - location: westus
"""


def test_create_from_an_azure_file_skips_the_region_fields(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    name = unique("reg")
    path = tmp_path / "registry.yml"
    path.write_text(AZURE_REGISTRY.format(name=name))

    result = invoke(
        ["registry", "create", "-f", str(path), "--set", "tags.stage=prod", "-o", "json"],
        as_admin(server),
    )

    created = json.loads(result.stdout)
    assert (created["name"], created["description"], created["tags"]) == (
        name,
        "Models every team may use",
        {"team": "platform", "stage": "prod"},
    )
    for field in ("location", "replication_locations"):
        assert f"note: ignoring Azure-only field '{field}' in {path}" in result.stderr
    assert "$schema" not in result.stderr
    assert admin.registries.get(name).model_dump(mode="json") == created
    owners = [(a.principal_name, a.role) for a in admin.role_assignments.list(registry=name)]
    assert owners == [("admin", "Owner")]


def test_create_show_list_update_and_delete_with_options(
    server: RunningServer, admin: Client
) -> None:
    env = as_admin(server)
    name = unique("reg")
    made = key_values(
        invoke(
            ["registry", "create", "-n", name, "--description", "Shared", "--tags", "a=1"], env
        ).stdout
    )
    assert (made["name"], made["description"], made["created_by"]) == (name, "Shared", "admin")

    shown = yaml.safe_load(invoke(["registry", "show", "-n", name, "-o", "yaml"], env).stdout)
    assert (shown["name"], shown["tags"]) == (name, {"a": "1"})
    rows = table_rows(invoke(["registry", "list"], env).stdout)
    assert {"name": name, "description": "Shared", "created_by": "admin"}.items() <= next(
        r for r in rows if r["name"] == name
    ).items()

    # --set edits the registry as it is now: the other tags stay
    invoke(["registry", "update", "-n", name, "--set", "tags.b=2"], env)
    assert admin.registries.get(name).tags == {"a": "1", "b": "2"}
    changed = json.loads(
        invoke(
            [
                "registry",
                "update",
                "-n",
                name,
                "--description",
                "New",
                "--tags",
                "c=3",
                "-o",
                "json",
            ],
            env,
        ).stdout
    )
    assert (changed["description"], changed["tags"]) == ("New", {"c": "3"})

    result = invoke(["registry", "delete", "-n", name, "--yes"], env)
    assert f"registry {name} deleted" in result.stderr
    with pytest.raises(NotFoundError):
        admin.registries.get(name)


def test_role_assignments_at_a_registry(server: RunningServer, admin: Client) -> None:
    env = as_admin(server)
    registry = admin.registries.create(unique("reg")).name
    alice = admin.users.create(unique("user")).name

    created = json.loads(
        invoke(
            [
                "role",
                "assignment",
                "create",
                "--role",
                "Registry User",
                "--user",
                alice,
                "--registry",
                registry,
                "-o",
                "json",
            ],
            env,
        ).stdout
    )
    assert (created["registry"], created["scope"]) == (registry, f"/registries/{registry}")
    listed = json.loads(
        invoke(["role", "assignment", "list", "--registry", registry, "-o", "json"], env).stdout
    )
    assert sorted((a["principal_name"], a["role"]) for a in listed) == sorted(
        [("admin", "Owner"), (alice, "Registry User")]
    )
    result = invoke(
        ["role", "assignment", "delete", "--id", created["id"], "--registry", registry], env
    )
    assert f"role assignment {created['id']} deleted" in result.stderr
    assert created["id"] not in [a.id for a in admin.role_assignments.list(registry=registry)]


def test_errors_exit_with_the_servers_message_or_a_usage_error(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    env = as_admin(server)
    taken = admin.registries.create(unique("reg")).name
    path = tmp_path / "registry.yml"
    path.write_text(AZURE_REGISTRY.format(name=taken))
    # A duplicate from a file points at the name's line, keeping the server's code.
    process = run(["registry", "create", "-f", str(path)], env)
    assert process.returncode == 1
    assert f"{path}:2: field 'name': registry '{taken}' already exists" in process.stderr
    assert "[registry_exists]" in process.stderr

    # Deleting cannot be undone: without a terminal it needs --yes, and nothing is deleted.
    process = run(["registry", "delete", "-n", taken], env)
    assert process.returncode == 2
    assert "add --yes to confirm" in process.stderr
    assert admin.registries.get(taken).name == taken

    # one scope at a time for role assignments
    process = run(
        [
            "role",
            "assignment",
            "create",
            "--role",
            "Reader",
            "--user",
            "admin",
            "--registry",
            taken,
            "-w",
            "ws",
        ],
        env,
    )
    assert process.returncode == 2
    assert "give one of --workspace, --registry or --global" in process.stderr
