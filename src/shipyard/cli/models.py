"""``shipyard model ...``: the model registry (Azure ML's ``az ml model``; the same models
MLflow's client sees)."""

from __future__ import annotations

from typing import Any

import click

from shipyard.cli.context import client, file_option, parse_pairs, set_option
from shipyard.cli.data import download_version, register_version
from shipyard.cli.output import output_option, print_many, print_one

MODEL_COLUMNS = ("name", "latest_version", "aliases", "description", "updated_at")
VERSION_COLUMNS = ("version", "type", "stage", "aliases", "job_name", "created_at")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace that holds the model."
)
name_option = click.option("-n", "--name", required=True, help="The model's name.")


@click.group("model")
def model() -> None:
    """Models: versioned, registered model files with aliases and stages."""


@model.command("create")
@file_option
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("-v", "--version", help="The version (omitted: the next number).")
@click.option("--path", help="A local file or folder, a datastore URI, a job output or runs:/.")
@click.option(
    "--type",
    "model_type",
    type=click.Choice(["custom_model", "mlflow_model"]),
    help="custom_model (the default) or mlflow_model (a folder with an MLmodel file).",
)
@click.option("--description", help="What the model is.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@set_option
@workspace_option
@output_option
def create(
    file: str | None,
    name: str | None,
    version: str | None,
    path: str | None,
    model_type: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    workspace: str,
    output: str,
) -> None:
    """Register a model version from a YAML file (-f) or options; a local folder is uploaded
    (only what the workspace does not hold yet)."""
    flags = {
        "name": name,
        "version": version,
        "path": path,
        "type": model_type,
        "description": description,
    }
    register_version(file, overrides, flags, tags, output, lambda c: c.workspace(workspace).models)


@model.command("show")
@name_option
@click.option("-v", "--version", help="The version.")
@click.option("--label", help="latest, or an alias such as champion.")
@workspace_option
@output_option
def show(name: str, version: str | None, label: str | None, workspace: str, output: str) -> None:
    """Show a version (with neither -v nor --label: the latest)."""
    with client() as c:
        print_one(c.workspace(workspace).models.get(name, version, label), output)


@model.command("list")
@click.option("-n", "--name", help="List this model's versions instead of the models.")
@workspace_option
@output_option
def list_(name: str | None, workspace: str, output: str) -> None:
    """List the workspace's models, or one model's versions (newest first)."""
    with client() as c:
        found = c.workspace(workspace).models.list(name)
        print_many(found, output, MODEL_COLUMNS if name is None else VERSION_COLUMNS)


@model.command("download")
@name_option
@click.option("-v", "--version", help="The version.")
@click.option("--label", help="latest, or an alias such as champion.")
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
    download_version(name, version, label, download_path, lambda c: c.workspace(workspace).models)


@model.command("update")
@name_option
@click.option("-v", "--version", help="The version to change (else the model itself).")
@click.option("--description", help="A new description.")
@click.option(
    "--tags", multiple=True, metavar="KEY=VALUE", help="Replace the tags with these (repeatable)."
)
@click.option("--set-alias", "set_aliases", multiple=True, help="Point this alias at -v.")
@click.option("--remove-alias", "remove_aliases", multiple=True, help="Remove this alias.")
@click.option("--stage", help="Move -v to an MLflow stage: None, Staging, Production, Archived.")
@click.option(
    "--archive-existing", is_flag=True, help="With --stage: archive the versions already in it."
)
@workspace_option
@output_option
def update(
    name: str,
    version: str | None,
    description: str | None,
    tags: tuple[str, ...],
    set_aliases: tuple[str, ...],
    remove_aliases: tuple[str, ...],
    stage: str | None,
    archive_existing: bool,
    workspace: str,
    output: str,
) -> None:
    """Change a model's or a version's description or tags; set or remove aliases; move a
    version between MLflow stages."""
    if (set_aliases or stage) and version is None:
        raise click.UsageError("--set-alias and --stage need the version: -v")
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = description
    if tags:
        changes["tags"] = parse_pairs(tags, "--tags")
    if not (changes or set_aliases or remove_aliases or stage):
        raise click.UsageError(
            "nothing to change: give --description, --tags, --set-alias, --remove-alias or --stage"
        )
    with client() as c:
        models = c.workspace(workspace).models
        if changes:
            models.update(name, version, **changes)
        for alias in remove_aliases:
            models.delete_alias(name, alias)
        for alias in set_aliases:
            models.set_alias(name, alias, str(version))
        if stage is not None and version is not None:
            models.transition_stage(
                name, version, stage, archive_existing_versions=archive_existing
            )
        shown: Any = models.get(name, version) if version else models.get_model(name)
    print_one(shown, output)


@model.command("delete")
@name_option
@click.option("-v", "--version", help="The version to delete.")
@click.option("--all-versions", is_flag=True, help="Delete the model and every version.")
@workspace_option
def delete(name: str, version: str | None, all_versions: bool, workspace: str) -> None:
    """Delete a version (-v), or the whole model (--all-versions)."""
    if (version is None) == (not all_versions):
        raise click.UsageError("give -v VERSION, or --all-versions to delete the whole model")
    with client() as c:
        c.workspace(workspace).models.delete(name, version)
    what = f"version {version} of {name}" if version else f"model {name}"
    click.echo(f"deleted {what}", err=True)
