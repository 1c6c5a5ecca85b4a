"""``shipyard compute ...`` against a real server, from Azure-shaped YAML files.

Happy paths run in-process; errors and exit codes on a real ``python -m shipyard`` process.
The Ray cluster itself is in tests/compute/test_ray_launcher.py: here the files are created
with ``--skip-validation``, or checked against an address where nothing listens.
"""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, free_port, unique

NOWHERE = f"http://127.0.0.1:{free_port()}"
AML = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
name: cpu-cluster
type: amlcompute
size: STANDARD_DS3_v2
min_instances: 0
max_instances: 4
idle_time_before_scale_down: 300
address: {NOWHERE}
cost:
  rate: 0.5
  unit: node
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"{unique('compute')}.yml"
    path.write_text(text)
    return str(path)


def test_create_show_list_and_delete_an_amlcompute_file(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    file = write(tmp_path, AML)
    made = invoke(["compute", "create", "-f", file, "-w", ws, "--skip-validation"], env)
    assert key_values(made.stdout)["type"] == "ray"
    shown = json.loads(
        invoke(["compute", "show", "-n", "cpu-cluster", "-w", ws, "-o", "json"], env).stdout
    )
    assert shown == admin.workspace(ws).computes.get("cpu-cluster").model_dump(mode="json")
    assert shown["autoscaler"] == {"min_workers": 0, "max_workers": 4, "idle_timeout_minutes": 5.0}
    assert shown["cost"] == {"rate": 0.5, "unit": "node"}
    assert shown["properties"]["size"] == "STANDARD_DS3_v2"
    flags = ["-n", "gpu", "-w", ws, "--skip-validation", "--set", "cost.rate=2", "-o", "json"]
    renamed = invoke(["compute", "create", "-f", file, *flags], env)
    assert json.loads(renamed.stdout)["cost"]["rate"] == 2.0
    rows = table_rows(invoke(["compute", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["type"]) for r in rows] == [
        ("local", "local"),
        ("cpu-cluster", "ray"),
        ("gpu", "ray"),
    ]
    invoke(["compute", "delete", "-n", "gpu", "-w", ws], env)
    assert [c.name for c in admin.workspace(ws).computes.list()] == ["local", "cpu-cluster"]


def test_errors_name_the_file_line_and_field(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    no_address = write(tmp_path, "name: c\ntype: amlcompute\nmax_instances: 2\n")
    done = run(["compute", "create", "-f", no_address, "-w", ws], env)
    assert done.returncode == 1, done.stderr
    assert "field 'address'" in done.stderr
    assert "does not provision machines" in done.stderr
    unreachable = write(tmp_path, f"name: c\ntype: ray\naddress: {NOWHERE}\n")
    done = run(["compute", "create", "-f", unreachable, "-w", ws], env)
    assert done.returncode == 1
    assert f"{unreachable}:3: field 'address'" in done.stderr
    assert "compute_unreachable" in done.stderr
    kubernetes = write(tmp_path, "name: k\ntype: kubernetes\n")
    done = run(["compute", "create", "-f", kubernetes, "-w", ws], env)
    assert done.returncode == 1
    assert f"{kubernetes}:2: field 'type'" in done.stderr
    local = run(["compute", "delete", "-n", "local", "-w", ws], env)
    assert local.returncode == 1
    assert "compute_protected" in local.stderr
