"""``shipyard datastore ...`` against a real server, from Azure-shaped YAML files.

Happy paths run in-process; errors and exit codes on a real ``python -m shipyard`` process
(see tests/cli/test_cli.py for why).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, start_server, unique
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roots").resolve()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, roots: Path
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, datastore_roots=[str(roots)]) as running:
        yield running


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"{unique('ds')}.yml"
    path.write_text(text)
    return str(path)


def test_create_show_list_update_default_and_delete_a_local_datastore(
    server: RunningServer, admin: Client, roots: Path, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    folder = roots / unique("drop")
    folder.mkdir()
    env = as_admin(server)
    file = write(
        tmp_path,
        "$schema: https://azuremlschemas.azureedge.net/latest/datastore.schema.json\n"
        f"name: drop\ntype: local\npath: {folder}\ndescription: CSV drops\n"
        "tags:\n  team: growth\n",
    )
    made = invoke(["datastore", "create", "-f", file, "-w", ws], env)
    assert key_values(made.stdout)["path"] == str(folder)

    shown = json.loads(
        invoke(["datastore", "show", "-n", "drop", "-w", ws, "-o", "json"], env).stdout
    )
    assert shown == admin.workspace(ws).datastores.get("drop").model_dump(mode="json")
    rows = table_rows(invoke(["datastore", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["is_default"]) for r in rows] == [
        ("workspaceblobstore", "True"),
        ("drop", "False"),
    ]

    changed = invoke(
        ["datastore", "update", "-n", "drop", "-w", ws, "--read-only", "--set", "tags.owner=al"],
        env,
    )
    assert key_values(changed.stdout)["read_only"] == "True"
    assert admin.workspace(ws).datastores.get("drop").tags == {"team": "growth", "owner": "al"}
    again = invoke(["datastore", "update", "-n", "drop", "-w", ws, "-f", file, "--read-write"], env)
    assert key_values(again.stdout)["read_only"] == "False"
    assert admin.workspace(ws).datastores.get("drop").tags == {"team": "growth"}

    default = invoke(["datastore", "set-default", "-n", "drop", "-w", ws, "-o", "json"], env)
    assert json.loads(default.stdout)["is_default"] is True
    secrets = invoke(["datastore", "list-secrets", "-n", "drop", "-w", ws, "-o", "json"], env)
    assert json.loads(secrets.stdout)["kind"] == "none"
    deleted = invoke(["datastore", "delete", "-n", "drop", "-w", ws], env)
    assert f"datastore drop deleted from workspace {ws}" in deleted.stderr
    assert [d.name for d in admin.workspace(ws).datastores.list()] == ["workspaceblobstore"]


def test_keys_in_the_file_are_sent_once_and_never_printed(
    server: RunningServer, admin: Client, s3_server: S3Server, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    spec = {
        "name": "lake",
        "type": "s3",
        "bucket": s3_server.new_bucket("cli"),
        "endpoint_url": s3_server.endpoint_url,
        "region": "us-east-1",
        "credentials": {
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    }
    file = write(tmp_path, yaml.safe_dump(spec))
    for output in ("table", "json", "yaml"):
        name = f"lake_{output}"
        made = invoke(["datastore", "create", "-f", file, "-n", name, "-w", ws, "-o", output], env)
        assert s3_server.secret_access_key not in made.output
    listed = invoke(["datastore", "list", "-w", ws, "-o", "json"], env)
    assert s3_server.secret_access_key not in listed.output
    rotated = invoke(["datastore", "update", "-n", "lake_json", "-w", ws, "-f", file], env)
    assert s3_server.secret_access_key not in rotated.output
    revealed = invoke(["datastore", "list-secrets", "-n", "lake_json", "-w", ws, "-o", "json"], env)
    assert json.loads(revealed.stdout)["secret_access_key"] == s3_server.secret_access_key


def test_an_azure_blob_file_is_refused_at_its_type_line(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    file = write(
        tmp_path,
        "$schema: https://azuremlschemas.azureedge.net/latest/azureBlob.schema.json\n"
        "name: azure_blob_example\n"
        "type: azure_blob\n"
        "description: Datastore pointing to a blob container.\n"
        "account_name: mytestblobstore\n"
        "container_name: data-container\n"
        "credentials:\n  account_key: XXXxxxXXXxXXXXxxXXXXXxXXXXXxXxxXxXXXxXXXxXXxxxXXxxXXX\n",
    )
    done = run(["datastore", "create", "-f", file, "-w", ws], as_admin(server))
    assert done.returncode == 1, done.stderr
    assert f"{file}:3: field 'type':" in done.stderr
    assert "Azure Blob Storage" in done.stderr
    assert "XXXxxxXXX" not in done.stderr


def test_update_refuses_to_move_a_datastore_and_names_the_line(
    server: RunningServer, admin: Client, roots: Path, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    first, second = roots / unique("a"), roots / unique("b")
    first.mkdir()
    second.mkdir()
    admin.workspace(ws).datastores.create("moving", type="local", path=str(first))
    file = write(tmp_path, f"name: moving\ntype: local\npath: {second}\n")
    done = run(["datastore", "update", "-n", "moving", "-w", ws, "-f", file], as_admin(server))
    assert done.returncode == 1
    assert f"{file}:3: field 'path': path cannot change" in done.stderr
    nothing = run(["datastore", "update", "-n", "moving", "-w", ws], as_admin(server))
    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr
    outside = run(
        [
            "datastore",
            "create",
            "-f",
            write(tmp_path, "name: x\ntype: local\npath: /etc\n"),
            "-w",
            ws,
        ],
        as_admin(server),
    )
    assert outside.returncode == 1
    assert "storage_not_allowed" in outside.stderr
