"""``shipyard environment ...``: environments (Azure ML's ``az ml environment``)."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from shipyard.cli.context import client, file_option, parse_pairs, set_option
from shipyard.cli.data import spec_from
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one

ASSET_COLUMNS = ("name", "latest_version", "curated", "archived", "created_by", "created_at")
VERSION_COLUMNS = (
    "version",
    "python",
    "pip_requirements",
    "build_status",
    "archived",
    "created_by",
    "created_at",
)
BUILD_FIELDS = ("name", "version", "status", "cached", "spec_hash", "python", "size")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace that holds the environment."
)
name_option = click.option("-n", "--name", required=True, help="The environment's name.")
version_option = click.option("-v", "--version", help="The version.")
label_option = click.option(
    "--label", type=click.Choice(["latest"]), help="latest: the newest version."
)


@click.group("environment")
def environment() -> None:
    """Environments: Python and pip packages that jobs run in, built once and cached."""


@environment.command("create")
@file_option
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("-v", "--version", help="The version (omitted: the next number).")
@click.option("--python", "python_version", help="The Python version, e.g. 3.11.")
@click.option(
    "--pip",
    "pip_lines",
    multiple=True,
    metavar="REQUIREMENT",
    help="A requirement line, e.g. scikit-learn==1.5.2 (repeatable).",
)
@click.option("--conda-file", help="A conda environment YAML file (python=X.Y, pip, pip list).")
@click.option("--image", help="A Docker image (runs only where a Docker engine is).")
@click.option("--description", help="What the environment is for.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@set_option
@workspace_option
@output_option
def create(
    file: str | None,
    name: str | None,
    version: str | None,
    python_version: str | None,
    pip_lines: tuple[str, ...],
    conda_file: str | None,
    image: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    workspace: str,
    output: str,
) -> None:
    """Register an environment version from a YAML file (-f) or options. A conda file's
    path is relative to the YAML file, as in Azure ML."""
    flags = {
        "name": name,
        "version": version,
        "python": python_version,
        "conda_file": conda_file,
        "image": image,
        "description": description,
    }
    spec, document, base_dir = spec_from(file, overrides, flags)
    if pip_lines:
        spec["pip_requirements"] = list(pip_lines)
    if tags:
        spec["tags"] = {**(spec.get("tags") or {}), **parse_pairs(tags, "--tags")}
    if not spec.get("name"):
        raise click.UsageError("give a name: -n, or a file with one")
    from_flags = frozenset(k for k, v in flags.items() if v is not None)
    from_flags |= {"pip_requirements"} if pip_lines else set()
    with client() as c:
        made = with_file(
            document,
            lambda: c.workspace(workspace).environments.create_from_spec(spec, base_dir=base_dir),
            from_flags | ({"tags"} if tags else set()),
        )
    print_one(made, output)


@environment.command("show")
@name_option
@version_option
@label_option
@workspace_option
@output_option
def show(name: str, version: str | None, label: str | None, workspace: str, output: str) -> None:
    """Show a version (with neither -v nor --label: the latest)."""
    with client() as c:
        print_one(c.workspace(workspace).environments.get(name, version, label), output)


@environment.command("list")
@click.option("-n", "--name", help="List this environment's versions instead.")
@click.option("--include-archived", is_flag=True, help="Archived environments or versions too.")
@workspace_option
@output_option
def list_(name: str | None, include_archived: bool, workspace: str, output: str) -> None:
    """List the workspace's environments (curated ones too), or one's versions."""
    with client() as c:
        found = c.workspace(workspace).environments.list(name, include_archived=include_archived)
        print_many(found, output, ASSET_COLUMNS if name is None else VERSION_COLUMNS)


@environment.command("build")
@name_option
@version_option
@label_option
@click.option("--show-log", is_flag=True, help="Print the whole build log (standard error).")
@workspace_option
@output_option
def build(
    name: str,
    version: str | None,
    label: str | None,
    show_log: bool,
    workspace: str,
    output: str,
) -> None:
    """Build a version on the server now (or find it built); exits 1 if the build fails,
    printing the end of its log."""
    with client() as c, Console(stderr=True).status(f"building {name} on the server"):
        result = c.workspace(workspace).environments.build(name, version, label)
    if output == "table":
        print_one({k: getattr(result, k) for k in BUILD_FIELDS}, output)
    else:
        print_one(result, output)
    if show_log or result.status == "failed":
        click.echo(result.log, err=True)
    if result.status == "failed":
        click.echo(f"error: the build failed: {result.error}", err=True)
        sys.exit(1)


@environment.command("archive")
@name_option
@click.option("-v", "--version", help="Archive this version only (else the environment).")
@workspace_option
def archive(name: str, version: str | None, workspace: str) -> None:
    """Hide an environment or a version from lists and from latest (it stays usable)."""
    with client() as c:
        c.workspace(workspace).environments.archive(name, version)
    click.echo(f"archived {name}" + (f" version {version}" if version else ""), err=True)


@environment.command("restore")
@name_option
@click.option("-v", "--version", help="Restore this version only (else the environment).")
@workspace_option
def restore(name: str, version: str | None, workspace: str) -> None:
    """Undo an archive."""
    with client() as c:
        c.workspace(workspace).environments.restore(name, version)
    click.echo(f"restored {name}" + (f" version {version}" if version else ""), err=True)
