"""``shipyard service-principal ...``"""

from __future__ import annotations

import click

from shipyard.cli.context import client, name_option
from shipyard.cli.output import output_option, print_many, print_one

LIST_COLUMNS = ("name", "description", "disabled", "created_at")


@click.group("service-principal")
def service_principal() -> None:
    """Service principals: identities for automation and CI, with their own tokens."""


@service_principal.command("create")
@name_option
@click.option("--description", help="What the service principal is for.")
@output_option
def create(name: str, description: str | None, output: str) -> None:
    """Create a service principal (then: service-principal token create, role assignment)."""
    with client() as c:
        print_one(c.service_principals.create(name, description), output)


@service_principal.command("show")
@name_option
@output_option
def show(name: str, output: str) -> None:
    """Show a service principal."""
    with client() as c:
        print_one(c.service_principals.get(name), output)


@service_principal.command("list")
@output_option
def list_(output: str) -> None:
    """List service principals."""
    with client() as c:
        print_many(c.service_principals.list(), output, LIST_COLUMNS)


@service_principal.command("delete")
@name_option
def delete(name: str) -> None:
    """Delete a service principal: its tokens stop working at once."""
    with client() as c:
        c.service_principals.delete(name)
    click.echo(f"service principal {name} deleted", err=True)


@service_principal.group("token")
def token() -> None:
    """A service principal's tokens."""


@token.command("create")
@click.option("-n", "--name", required=True, help="The service principal.")
@click.option("--token-name", default="default", show_default=True, help="What it is for.")
@click.option("--expires-in-days", type=int, help="Lifetime in days (server default: 90).")
@output_option
def create_token(name: str, token_name: str, expires_in_days: int | None, output: str) -> None:
    """Create a token for a service principal. It is printed once and cannot be shown again."""
    with client() as c:
        c.service_principals.get(name)  # a user's name here must not get that user a token
        created = c.tokens.create(token_name, user=name, expires_in_days=expires_in_days)
    print_one(created, output)
    if output == "table":
        click.echo("Copy the token now: it is not stored and will not be shown again.", err=True)
