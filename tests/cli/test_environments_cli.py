"""``shipyard environment ...`` against a real server: Azure-shaped YAML with a conda file
beside it, show/list (curated ones too), build (a real uv build), archive, and errors that
name the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

ENV_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
name: train
description: Training environment
conda_file: ./conda.yml
tags:
  team: churn
"""

CONDA_YAML = """\
name: train
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - six==1.17.0
"""


def project(tmp_path: Path, conda: str = CONDA_YAML, env: str = ENV_YAML) -> Path:
    (tmp_path / "env.yml").write_text(env)
    (tmp_path / "conda.yml").write_text(conda)
    return tmp_path


def test_an_azure_environment_file_with_its_conda_file(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    root = project(tmp_path)

    made = json.loads(
        invoke(
            ["environment", "create", "-f", str(root / "env.yml"), "-w", ws, "-o", "json"], env
        ).stdout
    )
    assert (made["name"], made["version"], made["python"]) == ("train", "1", "3.11")
    assert made["pip_requirements"] == ["six==1.17.0"]
    assert made["conda_file"]["channels"] == ["conda-forge"]
    assert made["tags"] == {"team": "churn"}
    invoke(
        ["environment", "create", "-f", str(root / "env.yml"), "-w", ws, "--set", "version=5"],
        env,
    )
    shown = invoke(["environment", "show", "-n", "train", "--label", "latest", "-w", ws], env)
    assert key_values(shown.stdout)["version"] == "5"
    listed = table_rows(invoke(["environment", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["latest_version"], r["curated"]) for r in listed] == [
        ("shipyard-minimal", "1", "True"),
        ("shipyard-sklearn", "1", "True"),
        ("train", "5", "False"),
    ]
    versions = json.loads(
        invoke(["environment", "list", "-n", "train", "-w", ws, "-o", "json"], env).stdout
    )
    assert [v["version"] for v in versions] == ["5", "1"]

    invoke(["environment", "archive", "-n", "train", "-v", "5", "-w", ws], env)
    latest = invoke(["environment", "show", "-n", "train", "-w", ws, "-o", "json"], env)
    assert json.loads(latest.stdout)["version"] == "1"
    invoke(["environment", "restore", "-n", "train", "-v", "5", "-w", ws], env)

    from_options = json.loads(
        invoke(
            [
                "environment", "create", "-n", "opts", "--python", "3.11",
                "--pip", "packaging", "--pip", "six==1.17.0", "--tags", "a=b",
                "-w", ws, "-o", "json",
            ],
            env,
        ).stdout
    )  # fmt: skip
    assert from_options["pip_requirements"] == ["packaging", "six==1.17.0"]
    assert from_options["tags"] == {"a": "b"}


@pytest.mark.slow
def test_build_prints_the_status_and_fails_with_the_log(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    root = project(tmp_path)
    invoke(["environment", "create", "-f", str(root / "env.yml"), "-w", ws], env)

    first = json.loads(
        invoke(
            ["environment", "build", "-n", "train", "-v", "1", "-w", ws, "-o", "json"], env
        ).stdout
    )
    assert (first["status"], first["cached"]) == ("ready", False)
    again = invoke(["environment", "build", "-n", "train", "--label", "latest", "-w", ws], env)
    fields = key_values(again.stdout)
    assert (fields["status"], fields["cached"]) == ("ready", "True")

    admin.workspace(ws).environments.create("broken", pip_requirements=["shipyard-nope-91c2==1"])
    failed = run(["environment", "build", "-n", "broken", "-v", "1", "-w", ws], env)
    assert failed.returncode == 1
    assert "the build failed" in failed.stderr
    assert "shipyard-nope-91c2" in failed.stderr


def test_a_conda_package_is_reported_at_the_conda_files_line(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    bad = CONDA_YAML.replace("  - pip\n", "  - pip\n  - numpy=1.26\n")
    root = project(tmp_path, conda=bad)
    refused = run(
        ["environment", "create", "-f", str(root / "env.yml"), "-w", ws], as_admin(server)
    )
    assert refused.returncode == 1
    assert f"{root / 'conda.yml'}:7: field 'dependencies.2':" in refused.stderr
    assert "list it under `- pip:`" in refused.stderr
    assert "[conda_package_refused]" in refused.stderr


def test_a_refused_requirement_in_the_conda_files_pip_list_names_its_line(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    bad = CONDA_YAML.replace(
        "      - six==1.17.0\n", "      - six==1.17.0\n      - -r /etc/passwd\n"
    )
    root = project(tmp_path, conda=bad)
    refused = run(
        ["environment", "create", "-f", str(root / "env.yml"), "-w", ws], as_admin(server)
    )
    assert refused.returncode == 1
    assert f"{root / 'conda.yml'}:9: field 'dependencies.2.pip.1':" in refused.stderr
    assert "'-r /etc/passwd' is a pip option" in refused.stderr


@pytest.mark.parametrize(
    ("yaml_text", "line", "field", "code"),
    [
        (
            "name: e\npip_requirements:\n  - six\n  - --index-url http://evil.example\n",
            4,
            "pip_requirements.1",
            "requirement_refused",
        ),
        ("name: e\npython: 3.10\npip_requirements: []\n", 2, "python", "invalid_python"),
        ("name: e\nos_type: windows\n", 2, "os_type", "invalid_os_type"),
        ("name: shipyard-minimal\npip_requirements: []\n", 1, "name", "environment_name_reserved"),
        ("name: e\nconda_file: ./missing.yml\n", 2, "conda_file", "file_not_found"),
        ("name: e\ndependencies: [numpy]\n", 2, "dependencies", "unknown_field"),
    ],
)
def test_bad_files_are_reported_with_file_line_and_field(
    server: RunningServer,
    admin: Client,
    tmp_path: Path,
    yaml_text: str,
    line: int,
    field: str,
    code: str,
) -> None:
    ws = admin.workspaces.create(unique()).name
    path = tmp_path / "env.yml"
    path.write_text(yaml_text)
    refused = run(["environment", "create", "-f", str(path), "-w", ws], as_admin(server))
    assert refused.returncode == 1
    assert f"{path}:{line}: field '{field}':" in refused.stderr, refused.stderr
    assert f"[{code}]" in refused.stderr
