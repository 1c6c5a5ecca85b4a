"""``shipyard role ...`` (assignments: ``shipyard role assignment ...``)."""

from __future__ import annotations

from typing import Any

import click

from shipyard.cli.context import client, file_option, name_option, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.cli.role_assignments import assignment
from shipyard.sdk.yaml import load_yaml_file, parse_override, set_path

LIST_COLUMNS = ("name", "builtin", "assignable_scopes", "description")
SCOPE_KINDS = ("global", "workspace", "registry")


@click.group("role")
def role() -> None:
    """Roles: the actions a role assignment grants."""


role.add_command(assignment)


@role.command("list")
@output_option
def list_(output: str) -> None:
    """List the built-in and custom roles."""
    with client() as c:
        print_many(c.roles.list(), output, LIST_COLUMNS)


@role.command("show")
@name_option
@output_option
def show(name: str, output: str) -> None:
    """Show a role's actions, excluded actions and assignable scopes."""
    with client() as c:
        print_one(c.roles.get(name), output)


@role.command("create")
@file_option
@click.option("-n", "--name", help="The name (overrides the file's).")
@click.option("--description", help="What the role is for.")
@click.option("--action", "actions", multiple=True, help="An allowed action pattern (repeatable).")
@click.option(
    "--not-action", "not_actions", multiple=True, help="An excluded action pattern (repeatable)."
)
@click.option(
    "--assignable-scope",
    "assignable_scopes",
    multiple=True,
    type=click.Choice(SCOPE_KINDS),
    help="Where it may be assigned (repeatable; default: all).",
)
@set_option
@output_option
def create(
    file: str | None,
    name: str | None,
    description: str | None,
    actions: tuple[str, ...],
    not_actions: tuple[str, ...],
    assignable_scopes: tuple[str, ...],
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Create a custom role from a YAML file (-f) or from options (-n, --action)."""
    document = load_yaml_file(file, overrides) if file else None
    spec: dict[str, Any] = dict(document.data) if document else {}
    spec.pop("$schema", None)
    flags: dict[str, Any] = {
        "name": name,
        "description": description,
        "actions": list(actions) or None,
        "not_actions": list(not_actions) or None,
        "assignable_scopes": list(assignable_scopes) or None,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    spec.update(given)
    if document is None:
        for item in overrides:
            set_path(spec, *parse_override(item))
    if not spec.get("name"):
        raise click.UsageError("give the role a name: -n NAME, or a file with a name")
    with client() as c:
        created = with_file(document, lambda: c.roles.create_from_spec(spec), frozenset(given))
    print_one(created, output)


@role.command("delete")
@name_option
def delete(name: str) -> None:
    """Delete a custom role (refused while it is assigned)."""
    with client() as c:
        c.roles.delete(name)
    click.echo(f"role {name} deleted", err=True)
