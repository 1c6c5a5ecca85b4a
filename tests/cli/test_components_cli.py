"""``shipyard component ...`` against a real server: an Azure command component file with
its code folder and additional_includes, show/list, archive/restore, and errors that name
the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

COMPONENT_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: train
display_name: Train a model
type: command
command: >-
  python train.py --data ${{inputs.data}} $[[--lr ${{inputs.lr}}]]
  --model ${{outputs.model}}
code: ./src
additional_includes:
  - ../shared/utils.py
environment: azureml:shipyard-minimal@latest
inputs:
  data:
    type: uri_folder
  lr:
    type: number
    optional: true
    min: 0
    max: 1
outputs:
  model:
    type: mlflow_model
tags:
  team: churn
"""


def project(root: Path, text: str = COMPONENT_YAML) -> Path:
    (root / "train" / "src").mkdir(parents=True)
    (root / "train" / "src" / "train.py").write_text("print('train')\n")
    (root / "shared").mkdir()
    (root / "shared" / "utils.py").write_text("def helper(): ...\n")
    path = root / "train" / "component.yml"
    path.write_text(text)
    return path


def test_an_azure_component_file_with_code_and_includes(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    path = project(tmp_path)

    made = json.loads(
        invoke(["component", "create", "-f", str(path), "-w", ws, "-o", "json"], env).stdout
    )
    assert (made["name"], made["version"], made["display_name"]) == ("train", "1", "Train a model")
    assert made["environment"] == "azureml:shipyard-minimal:1"
    assert made["code"].startswith("sha256:")
    assert made["inputs"]["lr"]["optional"] is True
    assert made["tags"] == {"team": "churn"}
    jobs = admin.workspace(ws).jobs._submitted
    job = jobs.create({"command": "ls", "code": made["code"]})
    assert sorted(jobs.code_files(job.name)) == ["train.py", "utils.py"]

    invoke(["component", "create", "-f", str(path), "-w", ws, "--set", "version=5"], env)
    invoke(["component", "create", "-f", str(path), "-w", ws, "-n", "train_copy", "-v", "2"], env)
    shown = invoke(["component", "show", "-n", "train", "--label", "latest", "-w", ws], env)
    assert key_values(shown.stdout)["version"] == "5"
    one = json.loads(
        invoke(["component", "show", "-n", "train", "-v", "1", "-w", ws, "-o", "json"], env).stdout
    )
    assert one["definition_hash"] == made["definition_hash"]
    listed = table_rows(invoke(["component", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["latest_version"]) for r in listed] == [
        ("train", "5"),
        ("train_copy", "2"),
    ]
    versions = table_rows(invoke(["component", "list", "-n", "train", "-w", ws], env).stdout)
    assert [(v["version"], v["environment"]) for v in versions] == [
        ("5", "azureml:shipyard-minimal:1"),
        ("1", "azureml:shipyard-minimal:1"),
    ]

    invoke(["component", "archive", "-n", "train", "-v", "5", "-w", ws], env)
    latest = invoke(["component", "show", "-n", "train", "-w", ws, "-o", "json"], env)
    assert json.loads(latest.stdout)["version"] == "1"
    every = invoke(
        ["component", "list", "-n", "train", "--include-archived", "-w", ws, "-o", "json"], env
    )
    assert [v["version"] for v in json.loads(every.stdout)] == ["5", "1"]
    invoke(["component", "restore", "-n", "train", "-v", "5", "-w", ws], env)
    invoke(["component", "archive", "-n", "train_copy", "-w", ws], env)
    names = json.loads(invoke(["component", "list", "-w", ws, "-o", "json"], env).stdout)
    assert [c["name"] for c in names] == ["train"]
    invoke(["component", "restore", "-n", "train_copy", "-w", ws], env)
    assert len(json.loads(invoke(["component", "list", "-w", ws, "-o", "json"], env).stdout)) == 2


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "code"),
    [
        ("    min: 0\n", "    min: 0\n    enum: [a]\n", 19, "inputs.lr.enum",
         "invalid_combination"),
        ("    optional: true\n", "", 5, "command", "required_input_in_optional_fragment"),
        ("shipyard-minimal@latest", "nope@latest", 11, "environment", "environment_not_found"),
        ("../shared/utils.py", "../shared/missing.py", 10, "additional_includes.0",
         "path_not_found"),
        ("code: ./src", "code: ./nowhere", 8, "code", "path_not_found"),
        ("name: train", "name: Train", 2, "name", "invalid_name"),
        ("type: mlflow_model", "type: integer", 22, "outputs.model.type", "invalid_type"),
        ("  team: churn", "  team: {a: 1}", 24, "tags.team", "invalid_field"),
        ("type: command", "type: command\nretries: 3", 5, "retries", "unknown_field"),
    ],
)  # fmt: skip
def test_bad_files_are_reported_with_file_line_and_field(
    server: RunningServer,
    admin: Client,
    tmp_path: Path,
    old: str,
    new: str,
    line: int,
    field: str,
    code: str,
) -> None:
    ws = admin.workspaces.create(unique()).name
    assert old in COMPONENT_YAML
    path = project(tmp_path, COMPONENT_YAML.replace(old, new))
    refused = run(["component", "create", "-f", str(path), "-w", ws], as_admin(server))
    assert refused.returncode == 1
    assert f"{path}:{line}: field '{field}':" in refused.stderr, refused.stderr
    assert f"[{code}]" in refused.stderr


def test_an_error_about_a_flag_is_not_blamed_on_the_file(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    path = project(tmp_path)
    refused = run(
        ["component", "create", "-f", str(path), "-n", "Bad-Name", "-w", ws], as_admin(server)
    )
    assert refused.returncode == 1
    assert str(path) not in refused.stderr
    assert "[invalid_name]" in refused.stderr


def test_show_of_a_missing_version_exits_1(server: RunningServer, admin: Client) -> None:
    ws = admin.workspaces.create(unique()).name
    refused = run(["component", "show", "-n", "train", "-v", "1", "-w", ws], as_admin(server))
    assert refused.returncode == 1
    assert "[component_not_found]" in refused.stderr
