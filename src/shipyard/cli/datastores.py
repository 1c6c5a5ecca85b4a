"""``shipyard datastore ...``: a workspace's connections to storage, from Azure-shaped YAML.

Keys may be written in the file (``credentials.access_key_id`` and
``credentials.secret_access_key``): the CLI reads them and sends them once; the server keeps
them in the workspace's key vault and never shows them again, except to ``list-secrets``.
"""

from __future__ import annotations

from typing import Any

import click

from shipyard.cli.context import client, file_option, name_option, parse_pairs, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.datastores import Datastore
from shipyard.sdk.yaml import YamlDocument, load_yaml_file, parse_override, set_path

LIST_COLUMNS = ("name", "type", "uri", "is_default", "read_only", "credentials.kind")
# What an update may change; where a datastore points is fixed at creation.
MUTABLE = ("description", "tags", "read_only", "credentials")
FIXED = ("type", "path", "bucket", "prefix", "endpoint_url", "region")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace the datastore belongs to."
)
skip_option = click.option(
    "--skip-validation",
    is_flag=True,
    help="Do not list the storage first to check that it answers and the credentials work.",
)


@click.group("datastore")
def datastore() -> None:
    """Datastores: named connections to a folder on the server or an S3-compatible bucket."""


def _spec(document: YamlDocument) -> dict[str, Any]:
    spec = dict(document.data)
    spec.pop("$schema", None)  # Azure's schema URL: nothing to check against here
    return spec


@datastore.command("create")
@click.option(
    "-f",
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The datastore's YAML file (Azure ML's shape; type local or s3).",
)
@click.option("-n", "--name", help="The name (overrides the file's).")
@workspace_option
@skip_option
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
    """Create a datastore from a YAML file; the server checks it answers first."""
    document = load_yaml_file(file, overrides)
    spec = _spec(document)
    if name:
        spec["name"] = name
    if not spec.get("name"):
        raise click.UsageError("give the datastore a name: in the file, or with -n NAME")
    from_flags = frozenset({"name"} if name else set())
    with client() as c:
        operations = c.workspace(workspace).datastores
        created = with_file(
            document,
            lambda: operations.create_from_spec(spec, skip_validation=skip_validation),
            from_flags,
        )
    print_one(created, output)


@datastore.command("show")
@name_option
@workspace_option
@output_option
def show(name: str, workspace: str, output: str) -> None:
    """Show a datastore: where it points and how it signs in (never its keys)."""
    with client() as c:
        print_one(c.workspace(workspace).datastores.get(name), output)


@datastore.command("list")
@workspace_option
@output_option
def list_(workspace: str, output: str) -> None:
    """List the workspace's datastores, workspaceblobstore first."""
    with client() as c:
        print_many(c.workspace(workspace).datastores.list(), output, LIST_COLUMNS)


def _changes_from_file(document: YamlDocument, current: Datastore) -> dict[str, Any]:
    """The file's changeable fields; a fixed field that differs from the datastore is an
    error at its line (delete and create the datastore to point it elsewhere)."""
    spec = _spec(document)
    for key in FIXED:
        if key in spec and spec[key] != getattr(current, key):
            raise document.error(
                InvalidInputError(
                    f"{key} cannot change; delete the datastore and create it again",
                    code="immutable_field",
                    field=key,
                )
            )
    return {k: spec[k] for k in MUTABLE if k in spec}


@datastore.command("update")
@name_option
@workspace_option
@file_option
@click.option("--description", help="What the datastore holds.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="Replace the tags (repeatable).")
@click.option(
    "--read-only/--read-write",
    "read_only",
    default=None,
    help="Refuse, or allow again, writes through the datastore.",
)
@skip_option
@set_option
@output_option
def update(
    name: str,
    workspace: str,
    file: str | None,
    description: str | None,
    tags: tuple[str, ...],
    read_only: bool | None,
    skip_validation: bool,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change a datastore's description, tags, read-only flag or credentials."""
    document = load_yaml_file(file, ()) if file else None
    with client() as c:
        operations = c.workspace(workspace).datastores
        current = operations.get(name)
        changes = _changes_from_file(document, current) if document else {}
        if description is not None:
            changes["description"] = description
        if tags:
            changes["tags"] = parse_pairs(tags, "--tags")
        if read_only is not None:
            changes["read_only"] = read_only
        if overrides:
            # --set edits the datastore as it is now: --set tags.team=x keeps the other tags.
            editable: dict[str, Any] = {
                "description": current.description,
                "tags": dict(current.tags),
                "read_only": current.read_only,
                **changes,
            }
            for item in overrides:
                set_path(editable, *parse_override(item))
            changes = {k: v for k, v in editable.items() if k in changes or _changed(current, k, v)}
        if not changes:
            raise click.UsageError(
                "nothing to change: give --description, --tags, --read-only, --set or -f"
            )
        updated = with_file(
            document,
            lambda: operations.update_from_spec(name, changes, skip_validation=skip_validation),
        )
    print_one(updated, output)


def _changed(current: Datastore, key: str, value: Any) -> bool:
    return key not in ("description", "tags", "read_only") or getattr(current, key) != value


@datastore.command("delete")
@name_option
@workspace_option
def delete(name: str, workspace: str) -> None:
    """Delete a datastore (the data it points at stays; keys it kept in the vault go)."""
    with client() as c:
        c.workspace(workspace).datastores.delete(name)
    click.echo(f"datastore {name} deleted from workspace {workspace}", err=True)


@datastore.command("set-default")
@name_option
@workspace_option
@output_option
def set_default(name: str, workspace: str, output: str) -> None:
    """Make a datastore the workspace's default (workspaceblobstore: its own storage)."""
    with client() as c:
        print_one(c.workspace(workspace).datastores.set_default(name), output)


@datastore.command("list-secrets")
@name_option
@workspace_option
@output_option
def list_secrets(name: str, workspace: str, output: str) -> None:
    """Print a datastore's keys. Needs workspaces/datastores/listSecrets/action; the read is
    recorded in the audit log."""
    with client() as c:
        print_one(c.workspace(workspace).datastores.list_secrets(name), output)
