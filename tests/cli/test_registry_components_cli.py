"""``shipyard component ... --registry`` against a real server: a component file with its
code folder created in a registry (the code uploaded through a workspace), shown, listed,
archived and deleted, and the registry deleted once empty."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.sdk.client import Client
from tests.cli.test_cli import as_admin, invoke, run
from tests.conftest import RunningServer, unique

COMPONENT_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: greet
type: command
command: python greet.py ${{inputs.who}}
code: ./src
environment: azureml:shipyard-minimal@latest
inputs:
  who: {type: string, default: world}
"""


def test_a_component_in_a_registry(server: RunningServer, admin: Client, tmp_path: Path) -> None:
    registry = admin.registries.create(unique("reg")).name
    workspace = admin.workspaces.create(unique()).name
    env = as_admin(server)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "greet.py").write_text("import sys\nprint('hello', sys.argv[1])\n")
    path = tmp_path / "greet.yml"
    path.write_text(COMPONENT_YAML)

    # Code needs a workspace to go through: refused naming the field without one.
    refused = run(["component", "create", "-f", str(path), "--registry", registry], env)
    assert refused.returncode != 0
    assert "code_workspace" in refused.stderr + refused.stdout

    made = invoke(
        ["component", "create", "-f", str(path), "--registry", registry, "-w", workspace,
         "-o", "json"],
        env,
    )  # fmt: skip
    version = json.loads(made.output)
    assert (version["registry"], version["version"]) == (registry, "1")
    assert version["code"].startswith("sha256:")

    shown = invoke(["component", "show", "-n", "greet", "--registry", registry, "-o", "json"], env)
    assert json.loads(shown.output)["definition_hash"] == version["definition_hash"]
    listed = invoke(["component", "list", "--registry", registry, "-o", "json"], env)
    assert [c["name"] for c in json.loads(listed.output)] == ["greet"]

    invoke(["component", "archive", "-n", "greet", "--registry", registry], env)
    listed = invoke(["component", "list", "--registry", registry, "-o", "json"], env)
    assert json.loads(listed.output) == []

    kept = run(["registry", "delete", "-n", registry, "--yes"], env)
    assert kept.returncode != 0
    assert "still holds" in kept.stderr + kept.stdout
    invoke(["component", "delete", "-n", "greet", "--registry", registry, "--yes"], env)
    invoke(["registry", "delete", "-n", registry, "--yes"], env)
