"""``shipyard component ...``: command and pipeline components (Azure ML's ``az ml
component``)."""

from __future__ import annotations

from pathlib import Path

import click

from shipyard.cli.context import client, set_option
from shipyard.cli.data import UploadBar
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
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
    "-w", "--workspace", required=True, help="The workspace that holds the component."
)
name_option = click.option("-n", "--name", required=True, help="The component's name.")
label_option = click.option(
    "--label", type=click.Choice(["latest"]), help="latest: the newest version."
)


@click.group("component")
def component() -> None:
    """Components: versioned commands with typed inputs and outputs, for pipelines."""


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
@output_option
def create(
    file: str,
    name: str | None,
    version: str | None,
    overrides: tuple[str, ...],
    workspace: str,
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
        components = c.workspace(workspace).components
        with UploadBar() as bar:
            made = with_file(
                document,
                lambda: components.create_from_spec(spec, base_dir=base_dir, progress=bar),
                from_flags,
            )
    print_one(made, output)


@component.command("show")
@name_option
@click.option("-v", "--version", help="The version.")
@label_option
@workspace_option
@output_option
def show(name: str, version: str | None, label: str | None, workspace: str, output: str) -> None:
    """Show a version (with neither -v nor --label: the latest)."""
    with client() as c:
        print_one(c.workspace(workspace).components.get(name, version, label), output)


@component.command("list")
@click.option("-n", "--name", help="List this component's versions instead.")
@click.option("--include-archived", is_flag=True, help="Archived components or versions too.")
@workspace_option
@output_option
def list_(name: str | None, include_archived: bool, workspace: str, output: str) -> None:
    """List the workspace's components, or one's versions (newest first)."""
    with client() as c:
        found = c.workspace(workspace).components.list(name, include_archived=include_archived)
        print_many(found, output, ASSET_COLUMNS if name is None else VERSION_COLUMNS)


@component.command("archive")
@name_option
@click.option("-v", "--version", help="Archive this version only (else the component).")
@workspace_option
def archive(name: str, version: str | None, workspace: str) -> None:
    """Hide a component or a version from lists and from latest (it stays usable by its
    version)."""
    with client() as c:
        c.workspace(workspace).components.archive(name, version)
    click.echo(f"archived {name}" + (f" version {version}" if version else ""), err=True)


@component.command("restore")
@name_option
@click.option("-v", "--version", help="Restore this version only (else the component).")
@workspace_option
def restore(name: str, version: str | None, workspace: str) -> None:
    """Undo an archive."""
    with client() as c:
        c.workspace(workspace).components.restore(name, version)
    click.echo(f"restored {name}" + (f" version {version}" if version else ""), err=True)
