"""``shipyard component ...``: command and pipeline components (Azure ML's ``az ml
component``), in a workspace (``-w``) or in a registry (``--registry``; then ``-w`` is the
workspace a local code folder is uploaded through)."""

from __future__ import annotations

from pathlib import Path

import click

from shipyard.cli.context import client, set_option
from shipyard.cli.data import UploadBar
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.sdk.client import Client
from shipyard.sdk.components import Component, ComponentOperations
from shipyard.sdk.registry_components import RegistryComponentOperations
from shipyard.sdk.yaml import load_yaml_file

ASSET_COLUMNS = ("name", "latest_version", "archived", "created_by", "created_at")
VERSION_COLUMNS = (
    "version",
    "display_name",
    "environment",
    "is_deterministic",
    "archived",
    "created_by",
    "created_at",
)

workspace_option = click.option(
    "-w",
    "--workspace",
    help="The workspace that holds the component (with --registry: the workspace a local "
    "code folder is uploaded through).",
)
registry_option = click.option(
    "--registry", help="The registry that holds the component (instead of a workspace)."
)
name_option = click.option("-n", "--name", required=True, help="The component's name.")
label_option = click.option(
    "--label", type=click.Choice(["latest"]), help="latest: the newest version."
)


@click.group("component")
def component() -> None:
    """Components: versioned commands with typed inputs and outputs, for pipelines."""


def _operations(c: Client, workspace: str | None, registry: str | None) -> ComponentOperations:
    if registry is not None:
        return c.registry(registry).components
    if workspace is None:
        raise click.UsageError("give -w/--workspace (or --registry)")
    return c.workspace(workspace).components


@component.command("create")
@click.option(
    "-f",
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The component's YAML file (Azure ML's command or pipeline component).",
)
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("-v", "--version", help="The version (overrides the file's; omitted: the next).")
@set_option
@workspace_option
@registry_option
@output_option
def create(
    file: str,
    name: str | None,
    version: str | None,
    overrides: tuple[str, ...],
    workspace: str | None,
    registry: str | None,
    output: str,
) -> None:
    """Register a component version from a YAML file. Its local code folder and
    additional_includes are uploaded first (paths relative to the file's folder; unchanged
    files are not sent again); a pipeline component's steps' local component files too."""
    document = load_yaml_file(file, overrides)
    spec = dict(document.data)
    flags = {"name": name, "version": version}
    spec.update({k: v for k, v in flags.items() if v is not None})
    base_dir = Path(file).resolve().parent
    from_flags = frozenset(k for k, v in flags.items() if v is not None)
    with client() as c:
        components = _operations(c, workspace, registry)
        with UploadBar() as bar:

            def send() -> Component:
                if isinstance(components, RegistryComponentOperations):
                    return components.create_from_spec(
                        spec, base_dir=base_dir, progress=bar, code_workspace=workspace
                    )
                return components.create_from_spec(spec, base_dir=base_dir, progress=bar)

            made = with_file(document, send, from_flags)
    print_one(made, output)


@component.command("show")
@name_option
@click.option("-v", "--version", help="The version.")
@label_option
@workspace_option
@registry_option
@output_option
def show(
    name: str,
    version: str | None,
    label: str | None,
    workspace: str | None,
    registry: str | None,
    output: str,
) -> None:
    """Show a version (with neither -v nor --label: the latest)."""
    with client() as c:
        print_one(_operations(c, workspace, registry).get(name, version, label), output)


@component.command("list")
@click.option("-n", "--name", help="List this component's versions instead.")
@click.option("--include-archived", is_flag=True, help="Archived components or versions too.")
@workspace_option
@registry_option
@output_option
def list_(
    name: str | None,
    include_archived: bool,
    workspace: str | None,
    registry: str | None,
    output: str,
) -> None:
    """List the workspace's (or registry's) components, or one's versions (newest first)."""
    with client() as c:
        found = _operations(c, workspace, registry).list(name, include_archived=include_archived)
        print_many(found, output, ASSET_COLUMNS if name is None else VERSION_COLUMNS)


@component.command("archive")
@name_option
@click.option("-v", "--version", help="Archive this version only (else the component).")
@workspace_option
@registry_option
def archive(name: str, version: str | None, workspace: str | None, registry: str | None) -> None:
    """Hide a component or a version from lists and from latest (it stays usable by its
    version)."""
    with client() as c:
        _operations(c, workspace, registry).archive(name, version)
    click.echo(f"archived {name}" + (f" version {version}" if version else ""), err=True)


@component.command("restore")
@name_option
@click.option("-v", "--version", help="Restore this version only (else the component).")
@workspace_option
@registry_option
def restore(name: str, version: str | None, workspace: str | None, registry: str | None) -> None:
    """Undo an archive."""
    with client() as c:
        _operations(c, workspace, registry).restore(name, version)
    click.echo(f"restored {name}" + (f" version {version}" if version else ""), err=True)


@component.command("delete")
@name_option
@click.option("-v", "--version", help="Delete this version only (else the component).")
@click.option("--registry", required=True, help="The registry that holds the component.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, version: str | None, registry: str, yes: bool) -> None:
    """Delete a registry's component or one of its versions (a workspace's components are
    archived instead). Pipelines submitted before keep what they pinned."""
    what = f"{name}" + (f" version {version}" if version else " (every version)")
    if not yes:
        click.confirm(f"delete component {what} from registry {registry}?", abort=True)
    with client() as c:
        c.registry(registry).components.delete(name, version)
    click.echo(f"deleted {what}", err=True)
