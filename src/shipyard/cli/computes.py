"""``shipyard compute ...``: a workspace's compute targets, from Azure-shaped YAML.

A file is ``type: ray`` with the cluster's ``address``, or Azure ML's ``type: amlcompute``
(which needs ``address`` too: Shipyard runs its jobs on that Ray cluster and maps the scale
fields onto the cluster's autoscaler, see docs/compute.md).
"""

from __future__ import annotations

from typing import Any

import click

from shipyard.cli.context import client, name_option, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.sdk.yaml import YamlDocument, load_yaml_file

LIST_COLUMNS = ("name", "type", "address", "cost.rate", "cost.unit")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace the compute belongs to."
)


@click.group("compute")
def compute() -> None:
    """Compute targets: the server's own host (local) and Ray clusters."""


def _spec(document: YamlDocument) -> dict[str, Any]:
    spec = dict(document.data)
    spec.pop("$schema", None)  # Azure's schema URL: nothing to check against here
    return spec


@compute.command("create")
@click.option(
    "-f",
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The compute's YAML file (type ray, or Azure ML's amlcompute).",
)
@click.option("-n", "--name", help="The name (overrides the file's).")
@workspace_option
@click.option(
    "--skip-validation",
    is_flag=True,
    help="Do not ask the Ray cluster for its version first.",
)
@set_option
@output_option
def create(
    file: str,
    name: str | None,
    workspace: str,
    skip_validation: bool,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Create a compute target from a YAML file; the server checks the cluster answers."""
    document = load_yaml_file(file, overrides)
    spec = _spec(document)
    if name:
        spec["name"] = name
    if not spec.get("name"):
        raise click.UsageError("give the compute a name: in the file, or with -n NAME")
    from_flags = frozenset({"name"} if name else set())
    with client() as c:
        operations = c.workspace(workspace).computes
        created = with_file(
            document,
            lambda: operations.create_from_spec(spec, skip_validation=skip_validation),
            from_flags,
        )
    print_one(created, output)


@compute.command("show")
@name_option
@workspace_option
@output_option
def show(name: str, workspace: str, output: str) -> None:
    """Show a compute target (local: its slots; amlcompute: the Ray autoscaler mapping)."""
    with client() as c:
        print_one(c.workspace(workspace).computes.get(name), output)


@compute.command("list")
@workspace_option
@output_option
def list_(workspace: str, output: str) -> None:
    """List the workspace's compute targets, local first."""
    with client() as c:
        print_many(c.workspace(workspace).computes.list(), output, LIST_COLUMNS)


@compute.command("delete")
@name_option
@workspace_option
def delete(name: str, workspace: str) -> None:
    """Delete a compute target (the cluster itself is not touched)."""
    with client() as c:
        c.workspace(workspace).computes.delete(name)
    click.echo(f"compute {name} deleted from workspace {workspace}", err=True)
