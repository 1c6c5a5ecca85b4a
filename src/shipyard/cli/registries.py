"""``shipyard registry ...``"""

from __future__ import annotations

import copy
import sys
from typing import Any

import click

from shipyard.cli.context import client, file_option, name_option, parse_pairs, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.sdk.yaml import YamlDocument, load_yaml_file, parse_override, set_path

# Fields of Azure's registry.yml about Azure regions and resources. A Shipyard server has no
# regions (its one store is the registry's only place), so they are dropped with a note and
# an Azure file works unchanged.
AZURE_ONLY_FIELDS = {
    "location",
    "replication_locations",
    "identity",
    "public_network_access",
    "managed_resource_group",
    "intellectual_property",
    "resource_group",
    "mlflow_registry_uri",
    "discovery_url",
}
LIST_COLUMNS = ("name", "description", "created_by", "created_at")


@click.group("registry")
def registry() -> None:
    """Registries: models, components, environments and data shared across workspaces."""


def _spec_from_file(document: YamlDocument) -> dict[str, Any]:
    spec = dict(document.data)
    spec.pop("$schema", None)
    for key in sorted(AZURE_ONLY_FIELDS & spec.keys()):
        click.echo(f"note: ignoring Azure-only field '{key}' in {document.path}", err=True)
        del spec[key]
    return spec


@registry.command("create")
@file_option
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("--description", help="What the registry is for.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@set_option
@output_option
def create(
    file: str | None,
    name: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Create a registry from a YAML file (-f) or from options (-n); you become its Owner."""
    document = load_yaml_file(file, overrides) if file else None
    spec = _spec_from_file(document) if document else {}
    flags = {"name": name, "description": description}
    spec.update({k: v for k, v in flags.items() if v is not None})
    if tags:
        spec["tags"] = {**(spec.get("tags") or {}), **parse_pairs(tags, "--tags")}
    if document is None:
        for item in overrides:
            set_path(spec, *parse_override(item))
    if not spec.get("name"):
        raise click.UsageError("give the registry a name: -n NAME, or a file with a name")
    from_flags = frozenset(k for k, v in flags.items() if v is not None) | frozenset(
        ["tags"] if tags else []
    )
    with client() as c:
        created = with_file(document, lambda: c.registries.create_from_spec(spec), from_flags)
    print_one(created, output)


@registry.command("show")
@name_option
@output_option
def show(name: str, output: str) -> None:
    """Show a registry."""
    with client() as c:
        print_one(c.registries.get(name), output)


@registry.command("list")
@output_option
def list_(output: str) -> None:
    """List the registries you may see."""
    with client() as c:
        print_many(c.registries.list(), output, LIST_COLUMNS)


@registry.command("update")
@name_option
@file_option
@click.option("--description", help="What the registry is for.")
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="Replace the tags (repeatable).")
@set_option
@output_option
def update(
    name: str,
    file: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change a registry's description or tags."""
    document = load_yaml_file(file, ()) if file else None
    changes: dict[str, Any] = {}
    if document is not None:
        spec = _spec_from_file(document)
        spec.pop("name", None)
        changes.update(spec)
    if description is not None:
        changes["description"] = description
    if tags:
        changes["tags"] = parse_pairs(tags, "--tags")
    with client() as c:
        if overrides:
            changes = _with_overrides(c.registries.get(name), changes, overrides)
        if not changes:
            raise click.UsageError("nothing to change: give --description, --tags, --set or -f")
        updated = with_file(document, lambda: c.registries.update_from_spec(name, changes))
    print_one(updated, output)


def _with_overrides(
    current: Any, changes: dict[str, Any], overrides: tuple[str, ...]
) -> dict[str, Any]:
    """``--set`` edits the registry as it is now (``--set tags.team=x`` keeps the other
    tags); only what differs is sent, so a concurrent edit of another field survives."""
    original = {"description": current.description, "tags": dict(current.tags)}
    editable = copy.deepcopy({**original, **changes})
    for item in overrides:
        set_path(editable, *parse_override(item))
    return {
        k: v for k, v in editable.items() if k in changes or k not in original or v != original[k]
    }


@registry.command("delete")
@name_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> None:
    """Delete a registry and the role assignments made at it (there is no undo)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("deleting a registry cannot be undone; add --yes to confirm")
        click.confirm(f"Delete registry {name!r} and its role assignments?", abort=True)
    with client() as c:
        c.registries.delete(name)
    click.echo(f"registry {name} deleted", err=True)
