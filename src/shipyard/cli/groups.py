"""``shipyard group ...``"""

from __future__ import annotations

from typing import Any

import click

from shipyard.cli.context import client, name_option
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.sdk.groups import Group

LIST_COLUMNS = ("name", "description", "members", "owners", "created_at")

member_option = click.option(
    "--member", required=True, help="The user or service principal, by name."
)
owner_option = click.option(
    "--owner", is_flag=True, help="As an owner (manages the group) rather than a member."
)


def _view(group: Group, output: str) -> Group | dict[str, Any]:
    """The group as the REST API has it; in a table, each member as 'name (kind)'."""
    if output != "table":
        return group
    data = group.model_dump(mode="json")
    for relation in ("members", "owners"):
        data[relation] = [f"{m['name']} ({m['kind']})" for m in data[relation]]
    return data


@click.group("group")
def group() -> None:
    """Groups of users and service principals: a role given to a group holds for its members."""


@group.command("create")
@name_option
@click.option("--description", help="What the group is for.")
@output_option
def create(name: str, description: str | None, output: str) -> None:
    """Create a group; you become its owner."""
    with client() as c:
        print_one(_view(c.groups.create(name, description), output), output)


@group.command("show")
@name_option
@output_option
def show(name: str, output: str) -> None:
    """Show a group with its members and owners."""
    with client() as c:
        print_one(_view(c.groups.get(name), output), output)


@group.command("list")
@output_option
def list_(output: str) -> None:
    """List groups."""
    with client() as c:
        print_many((_view(g, output) for g in c.groups.list()), output, LIST_COLUMNS)


@group.command("add-member")
@name_option
@member_option
@owner_option
@output_option
def add_member(name: str, member: str, owner: bool, output: str) -> None:
    """Add a member (or, with --owner, an owner) to a group."""
    with client() as c:
        print_one(_view(c.groups.add_member(name, member, owner=owner), output), output)


@group.command("remove-member")
@name_option
@member_option
@owner_option
@output_option
def remove_member(name: str, member: str, owner: bool, output: str) -> None:
    """Remove a member (or, with --owner, an owner): access through the group ends at once."""
    with client() as c:
        print_one(_view(c.groups.remove_member(name, member, owner=owner), output), output)


@group.command("delete")
@name_option
def delete(name: str) -> None:
    """Delete a group and every role assignment it holds."""
    with client() as c:
        c.groups.delete(name)
    click.echo(f"group {name} deleted", err=True)
