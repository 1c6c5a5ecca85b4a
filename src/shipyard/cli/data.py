"""``shipyard data ...``: data assets (Azure ML's ``az ml data``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from shipyard.cli.context import client, file_option, parse_pairs, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.schemas.data import DataPreview
from shipyard.sdk.client import Client
from shipyard.sdk.yaml import load_yaml_file, parse_override, set_path

ASSET_COLUMNS = ("name", "latest_version", "archived", "created_by", "created_at")
VERSION_COLUMNS = ("version", "type", "path", "archived", "created_by", "created_at")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace that holds the asset."
)
name_option = click.option("-n", "--name", required=True, help="The asset's name.")
version_option = click.option("-v", "--version", help="The version.")
label_option = click.option(
    "--label", type=click.Choice(["latest"]), help="latest: the newest version."
)


class UploadBar:
    """A progress bar on standard error for the bytes an upload sends."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("uploading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> UploadBar:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start(self, total_bytes: int, files: int) -> None:
        if files == 0:
            click.echo("note: the workspace already has these files; nothing to upload", err=True)
            return
        self._task = self._progress.add_task("upload", total=total_bytes)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)


def spec_from(
    file: str | None, overrides: tuple[str, ...], flags: dict[str, Any]
) -> tuple[dict[str, Any], Any, Path | None]:
    """The YAML file's fields, then the flags given, then --set: (spec, document, base dir).
    A relative local path in a file is relative to the file's folder, as in Azure ML."""
    document = load_yaml_file(file, overrides) if file else None
    spec = dict(document.data) if document else {}
    spec.update({k: v for k, v in flags.items() if v is not None and v != {}})
    if document is None:
        for item in overrides:
            set_path(spec, *parse_override(item))
    base_dir = Path(file).resolve().parent if file else None
    return spec, document, base_dir


@click.group("data")
def data() -> None:
    """Data assets: versioned references to files, folders and tables."""


@data.command("create")
@file_option
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("-v", "--version", help="The version (omitted: the next number).")
@click.option("--path", help="A local file or folder, a datastore URI or an http(s) URL.")
@click.option(
    "--type",
    "data_type",
    type=click.Choice(["uri_file", "uri_folder", "mltable"]),
    help="uri_file, uri_folder (the default) or mltable.",
)
@click.option("--description", help="What the data is.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@set_option
@workspace_option
@output_option
def create(
    file: str | None,
    name: str | None,
    version: str | None,
    path: str | None,
    data_type: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    workspace: str,
    output: str,
) -> None:
    """Register a data asset version from a YAML file (-f) or options; local paths are
    uploaded (only what the workspace does not hold yet)."""
    flags = {
        "name": name,
        "version": version,
        "path": path,
        "type": data_type,
        "description": description,
    }
    register_version(file, overrides, flags, tags, output, lambda c: c.workspace(workspace).data)


def register_version(
    file: str | None,
    overrides: tuple[str, ...],
    flags: dict[str, str | None],
    tags: tuple[str, ...],
    output: str,
    assets: Callable[[Client], Any],
) -> None:
    """Register a version of a data asset or a model (``assets`` picks which of the
    workspace's operation groups) from a YAML file, ``--set`` overrides and flags, uploading
    a local path with a progress bar."""
    spec, document, base_dir = spec_from(file, overrides, flags)
    if tags:
        spec["tags"] = {**(spec.get("tags") or {}), **parse_pairs(tags, "--tags")}
    if not spec.get("name") or not spec.get("path"):
        raise click.UsageError("give a name and a path: -n and --path, or a file with both")
    from_flags = frozenset(k for k, v in flags.items() if v is not None)
    with client() as c, UploadBar() as bar:
        made = with_file(
            document,
            lambda: assets(c).create_from_spec(spec, base_dir=base_dir, progress=bar),
            from_flags | ({"tags"} if tags else set()),
        )
    print_one(made, output)


@data.command("show")
@name_option
@version_option
@label_option
@workspace_option
@output_option
def show(name: str, version: str | None, label: str | None, workspace: str, output: str) -> None:
    """Show a version (with neither -v nor --label: the latest)."""
    with client() as c:
        print_one(c.workspace(workspace).data.get(name, version, label), output)


@data.command("list")
@click.option("-n", "--name", help="List this asset's versions instead of the assets.")
@click.option("--include-archived", is_flag=True, help="Archived assets or versions too.")
@workspace_option
@output_option
def list_(name: str | None, include_archived: bool, workspace: str, output: str) -> None:
    """List the workspace's data assets, or one asset's versions (newest first)."""
    with client() as c:
        found = c.workspace(workspace).data.list(name, include_archived=include_archived)
        print_many(found, output, ASSET_COLUMNS if name is None else VERSION_COLUMNS)


@data.command("download")
@name_option
@version_option
@label_option
@click.option(
    "--download-path",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The folder to download into (made if needed).",
)
@workspace_option
def download(
    name: str, version: str | None, label: str | None, download_path: str, workspace: str
) -> None:
    """Download a version's files."""
    download_version(name, version, label, download_path, lambda c: c.workspace(workspace).data)


def download_version(
    name: str,
    version: str | None,
    label: str | None,
    download_path: str,
    assets: Callable[[Client], Any],
) -> None:
    """Download a data or model version (``assets`` picks the operation group)."""
    with client() as c:
        where = assets(c).download(name, version, label, download_path=download_path)
    click.echo(f"downloaded {name} to {where}", err=True)


@data.command("preview")
@name_option
@version_option
@label_option
@click.option("--rows", type=click.IntRange(1, 1000), default=20, show_default=True)
@workspace_option
@output_option
def preview(
    name: str, version: str | None, label: str | None, rows: int, workspace: str, output: str
) -> None:
    """Show the schema and first rows of an mltable (or a CSV, Parquet or JSON-lines file)."""
    with client() as c:
        found = c.workspace(workspace).data.preview(name, version, label, rows=rows)
    print_preview(found, output)


def print_preview(found: DataPreview, output: str) -> None:
    if output != "table":
        print_one(found, output)
        return
    table = Table()
    for column in found.columns:
        table.add_column(f"{column.name}\n[dim]{column.type}[/dim]", overflow="fold")
    for row in found.rows:
        table.add_row(*(_cell(value) for value in row))
    Console(soft_wrap=True).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@data.command("update")
@name_option
@click.option("-v", "--version", required=True, help="The version.")
@click.option("--description", help="A new description.")
@click.option(
    "--tags", multiple=True, metavar="KEY=VALUE", help="Replace the tags with these (repeatable)."
)
@workspace_option
@output_option
def update(
    name: str,
    version: str,
    description: str | None,
    tags: tuple[str, ...],
    workspace: str,
    output: str,
) -> None:
    """Change a version's description or tags (its data never changes)."""
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = description
    if tags:
        changes["tags"] = parse_pairs(tags, "--tags")
    if not changes:
        raise click.UsageError("nothing to change: give --description or --tags")
    with client() as c:
        print_one(c.workspace(workspace).data.update(name, version, **changes), output)


@data.command("archive")
@name_option
@click.option("-v", "--version", help="Archive this version only (else the whole asset).")
@workspace_option
def archive(name: str, version: str | None, workspace: str) -> None:
    """Hide an asset or a version from lists and from latest (it stays readable)."""
    with client() as c:
        c.workspace(workspace).data.archive(name, version)
    click.echo(f"archived {name}" + (f" version {version}" if version else ""), err=True)


@data.command("restore")
@name_option
@click.option("-v", "--version", help="Restore this version only (else the whole asset).")
@workspace_option
def restore(name: str, version: str | None, workspace: str) -> None:
    """Undo an archive."""
    with client() as c:
        c.workspace(workspace).data.restore(name, version)
    click.echo(f"restored {name}" + (f" version {version}" if version else ""), err=True)


@data.command("delete")
@name_option
@click.option("-v", "--version", required=True, help="The version to delete.")
@click.option("--force", is_flag=True, help="Delete even while a model uses the version.")
@workspace_option
def delete(name: str, version: str, force: bool, workspace: str) -> None:
    """Delete a version for good (refused while a model uses it, unless --force)."""
    with client() as c:
        c.workspace(workspace).data.delete(name, version, force=force)
    click.echo(f"deleted version {version} of {name}", err=True)
