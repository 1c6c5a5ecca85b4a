"""``shipyard data ...`` and ``shipyard model ...`` against a real server: Azure-shaped YAML
files, uploads, show/list/preview/download, archive, update, delete, and error messages."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, run, table_rows
from tests.conftest import RunningServer, unique

CSV = "city,people\noslo,700000\nrome,2800000\n"

DATA_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json
name: cities
description: Big cities
type: mltable
path: ./cities
tags:
  source: census
"""

MODEL_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json
name: clf
version: 1
type: custom_model
path: ./model
description: A classifier
properties:
  auc: "0.9"
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "cities").mkdir()
    (tmp_path / "cities" / "cities.csv").write_text(CSV)
    (tmp_path / "cities" / "MLTable").write_text(
        "paths:\n  - file: ./cities.csv\ntransformations:\n  - read_delimited: {}\n"
    )
    (tmp_path / "data.yml").write_text(DATA_YAML)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00\x01weights")
    (tmp_path / "model.yml").write_text(MODEL_YAML)
    return tmp_path


def test_data_from_a_yaml_file_to_a_preview(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    root = project(tmp_path)

    made = invoke(["data", "create", "-f", str(root / "data.yml"), "-w", ws, "-o", "json"], env)
    body = json.loads(made.stdout)
    assert (body["name"], body["version"], body["type"]) == ("cities", "1", "mltable")
    assert body["tags"] == {"source": "census"}
    again = invoke(
        ["data", "create", "-f", str(root / "data.yml"), "-w", ws, "--set", "version=2024"], env
    )
    assert "nothing to upload" in again.stderr

    shown = json.loads(
        invoke(
            ["data", "show", "-n", "cities", "--label", "latest", "-w", ws, "-o", "json"], env
        ).stdout
    )
    assert shown["version"] == "2024"
    listed = table_rows(invoke(["data", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["latest_version"]) for r in listed] == [("cities", "2024")]
    versions = json.loads(
        invoke(["data", "list", "-n", "cities", "-w", ws, "-o", "json"], env).stdout
    )
    assert [v["version"] for v in versions] == ["2024", "1"]

    preview = invoke(["data", "preview", "-n", "cities", "-v", "1", "-w", ws, "--rows", "1"], env)
    assert "oslo" in preview.stdout
    assert "rome" not in preview.stdout
    assert "int64" in preview.stdout
    as_json = json.loads(
        invoke(["data", "preview", "-n", "cities", "-w", ws, "-o", "json"], env).stdout
    )
    assert as_json["rows"] == [["oslo", 700000], ["rome", 2800000]]

    target = tmp_path / "copy"
    invoke(
        ["data", "download", "-n", "cities", "-v", "1", "--download-path", str(target), "-w", ws],
        env,
    )
    assert (target / "cities.csv").read_text() == CSV

    updated = invoke(
        [
            "data",
            "update",
            "-n",
            "cities",
            "-v",
            "1",
            "--description",
            "v1",
            "-w",
            ws,
            "-o",
            "json",
        ],
        env,
    )
    assert json.loads(updated.stdout)["description"] == "v1"
    invoke(["data", "archive", "-n", "cities", "-v", "2024", "-w", ws], env)
    latest = invoke(["data", "show", "-n", "cities", "-w", ws, "-o", "json"], env)
    assert json.loads(latest.stdout)["version"] == "1"
    invoke(["data", "restore", "-n", "cities", "-v", "2024", "-w", ws], env)
    invoke(["data", "delete", "-n", "cities", "-v", "2024", "-w", ws], env)
    gone = run(["data", "show", "-n", "cities", "-v", "2024", "-w", ws], env)
    assert gone.returncode == 1
    assert "[data_version_not_found]" in gone.stderr


def test_data_from_options_and_errors_naming_the_line(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    root = project(tmp_path)
    made = invoke(
        [
            "data", "create", "-n", "single", "--path", str(root / "cities" / "cities.csv"),
            "--type", "uri_file", "--tags", "a=b", "-w", ws, "-o", "json",
        ],
        env,
    )  # fmt: skip
    assert json.loads(made.stdout)["tags"] == {"a": "b"}

    (root / "bad.yml").write_text("name: bad\ntype: table\npath: ./cities\n")
    refused = run(["data", "create", "-f", str(root / "bad.yml"), "-w", ws], env)
    assert refused.returncode == 1
    assert "bad.yml:2" in refused.stderr
    assert "type" in refused.stderr

    (root / "escape.yml").write_text(
        "name: escape\npath: azureml://datastores/workspaceblobstore/paths/../../etc\n"
    )
    escaped = run(["data", "create", "-f", str(root / "escape.yml"), "-w", ws], env)
    assert escaped.returncode == 1
    assert "escape.yml:2" in escaped.stderr
    assert "[invalid_path]" in escaped.stderr
    missing = run(["data", "create", "-n", "x", "-w", ws], env)
    assert missing.returncode == 2


def test_models_from_a_yaml_file(server: RunningServer, admin: Client, tmp_path: Path) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    root = project(tmp_path)
    made = json.loads(
        invoke(
            ["model", "create", "-f", str(root / "model.yml"), "-w", ws, "-o", "json"], env
        ).stdout
    )
    assert (made["name"], made["version"], made["properties"]) == ("clf", 1, {"auc": "0.9"})
    twice = run(["model", "create", "-f", str(root / "model.yml"), "-w", ws], env)
    assert twice.returncode == 1
    assert "model.yml:3" in twice.stderr
    assert "[model_version_exists]" in twice.stderr
    invoke(["model", "create", "-f", str(root / "model.yml"), "--set", "version=", "-w", ws], env)

    updated = json.loads(
        invoke(
            [
                "model", "update", "-n", "clf", "-v", "1", "--set-alias", "champion",
                "--stage", "Staging", "--description", "first", "-w", ws, "-o", "json",
            ],
            env,
        ).stdout
    )  # fmt: skip
    assert (updated["aliases"], updated["stage"], updated["description"]) == (
        ["champion"],
        "Staging",
        "first",
    )
    shown = json.loads(
        invoke(
            ["model", "show", "-n", "clf", "--label", "champion", "-w", ws, "-o", "json"], env
        ).stdout
    )
    assert shown["version"] == 1
    versions = table_rows(invoke(["model", "list", "-n", "clf", "-w", ws], env).stdout)
    assert [r["version"] for r in versions] == ["2", "1"]
    models = table_rows(invoke(["model", "list", "-w", ws], env).stdout)
    assert [r["name"] for r in models] == ["clf"]

    target = tmp_path / "copy"
    invoke(
        ["model", "download", "-n", "clf", "--label", "champion", "--download-path", str(target),
         "-w", ws],
        env,
    )  # fmt: skip
    assert (target / "weights.bin").read_bytes() == b"\x00\x01weights"

    needs_version = run(["model", "delete", "-n", "clf", "-w", ws], env)
    assert needs_version.returncode == 2
    invoke(["model", "delete", "-n", "clf", "-v", "1", "-w", ws], env)
    invoke(["model", "update", "-n", "clf", "--description", "the model", "-w", ws], env)
    invoke(["model", "delete", "-n", "clf", "--all-versions", "-w", ws], env)
    gone = run(["model", "show", "-n", "clf", "-w", ws], env)
    assert gone.returncode == 1
    assert "[model_not_found]" in gone.stderr
