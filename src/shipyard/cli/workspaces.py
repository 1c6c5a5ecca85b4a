"""``shipyard workspace ...``"""

from __future__ import annotations

import copy
import sys
from typing import Any

import click

from shipyard.cli.context import client, file_option, name_option, parse_pairs, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.sdk.yaml import YamlDocument, load_yaml_file, parse_override, set_path

# Fields an Azure ML workspace.yml may carry that mean nothing on a self-hosted server. They
# are dropped with a note, so such a file runs unchanged.
AZURE_ONLY_FIELDS = {
    "location",
    "resource_group",
    "hbi_workspace",
    "image_build_compute",
    "public_network_access",
    "managed_network",
    "identity",
    "primary_user_assigned_identity",
    "kind",
    "enable_data_isolation",
    "customer_managed_key",
    "system_datastores_auth_mode",
    "application_insights",
    "container_registry",
    "key_vault",
    "storage_account",
    "serverless_compute",
    "allow_roleassignment_on_rg",
    "provision_network_now",
}
LIST_COLUMNS = ("name", "display_name", "description", "created_by", "created_at")


@click.group("workspace")
def workspace() -> None:
    """Workspaces: the home of a team's runs, data, models and endpoints."""


def _spec_from_file(document: YamlDocument) -> dict[str, Any]:
    spec = dict(document.data)
    spec.pop("$schema", None)
    for key in sorted(AZURE_ONLY_FIELDS & spec.keys()):
        click.echo(f"note: ignoring Azure-only field '{key}' in {document.path}", err=True)
        del spec[key]
    return spec


@workspace.command("create")
@file_option
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("--display-name", help="A friendly name shown in lists and the Studio.")
@click.option("--description", help="What the workspace is for.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--storage-uri", help="Bring your own storage: an existing folder.")
@click.option(
    "--environment-registry",
    type=click.Choice(["shared", "dedicated"]),
    default=None,
    help="Cache built environments server-wide (shared) or for this workspace only.",
)
@set_option
@output_option
def create(
    file: str | None,
    name: str | None,
    display_name: str | None,
    description: str | None,
    tags: tuple[str, ...],
    storage_uri: str | None,
    environment_registry: str | None,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Create a workspace from a YAML file (-f) or from options (-n)."""
    document = load_yaml_file(file, overrides) if file else None
    spec = _spec_from_file(document) if document else {}
    flags = {
        "name": name,
        "display_name": display_name,
        "description": description,
        "environment_registry": environment_registry,
    }
    spec.update({k: v for k, v in flags.items() if v is not None})
    if tags:
        spec["tags"] = {**(spec.get("tags") or {}), **parse_pairs(tags, "--tags")}
    if storage_uri:
        spec["storage"] = {"uri": storage_uri}
    if document is None:
        for item in overrides:
            set_path(spec, *parse_override(item))
    if not spec.get("name"):
        raise click.UsageError("give the workspace a name: -n NAME, or a file with a name")
    with client() as c:
        from_flags = frozenset(k for k, v in flags.items() if v is not None) | frozenset(
            k for k, given in (("tags", tags), ("storage", storage_uri)) if given
        )
        created = with_file(document, lambda: c.workspaces.create_from_spec(spec), from_flags)
    print_one(created, output)


@workspace.command("show")
@name_option
@output_option
def show(name: str, output: str) -> None:
    """Show a workspace and its associated resources."""
    with client() as c:
        print_one(c.workspaces.get(name), output)


@workspace.command("list")
@click.option("--deleted", is_flag=True, help="List soft-deleted workspaces instead.")
@output_option
def list_(deleted: bool, output: str) -> None:
    """List the workspaces you may see."""
    with client() as c:
        print_many(c.workspaces.list(deleted=deleted), output, LIST_COLUMNS)


@workspace.command("update")
@name_option
@file_option
@click.option("--display-name", help="A friendly name shown in lists and the Studio.")
@click.option("--description", help="What the workspace is for.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="Replace the tags (repeatable).")
@set_option
@output_option
def update(
    name: str,
    file: str | None,
    display_name: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change a workspace's display name, description or tags."""
    document = load_yaml_file(file, ()) if file else None
    with client() as c:
        current = c.workspaces.get(name)
        changes: dict[str, Any] = {}
        if document is not None:
            spec = _spec_from_file(document)
            spec.pop("name", None)
            changes.update(spec)
        for key, value in (("display_name", display_name), ("description", description)):
            if value is not None:
                changes[key] = value
        if tags:
            changes["tags"] = parse_pairs(tags, "--tags")
        if overrides:
            # --set edits the workspace as it is now: --set tags.team=x keeps the other tags.
            original = {
                "display_name": current.display_name,
                "description": current.description,
                "tags": dict(current.tags),
            }
            editable = copy.deepcopy({**original, **changes})
            for item in overrides:
                set_path(editable, *parse_override(item))
            # Send only what changed, so a concurrent edit of another field is not overwritten.
            changes = {
                k: v
                for k, v in editable.items()
                if k in changes or k not in original or v != original[k]
            }
        if not changes:
            raise click.UsageError(
                "nothing to change: give --display-name, --description, --tags, --set or -f"
            )
        updated = with_file(document, lambda: c.workspaces.update_from_spec(name, changes))
    print_one(updated, output)


@workspace.command("delete")
@name_option
@click.option(
    "--permanently-delete",
    is_flag=True,
    help="Remove the metadata and stored files now, with no recovery.",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, permanently_delete: bool, yes: bool) -> None:
    """Delete a workspace (soft: recoverable until the retention period ends)."""
    if permanently_delete and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("--permanently-delete cannot be undone; add --yes to confirm")
        click.confirm(f"Permanently delete workspace {name!r} and all its files?", abort=True)
    with client() as c:
        c.workspaces.delete(name, permanently_delete=permanently_delete)
    how = "permanently deleted" if permanently_delete else "deleted (recoverable)"
    click.echo(f"workspace {name} {how}", err=True)


@workspace.command("recover")
@name_option
@output_option
def recover(name: str, output: str) -> None:
    """Bring back a soft-deleted workspace."""
    with client() as c:
        print_one(c.workspaces.recover(name), output)
