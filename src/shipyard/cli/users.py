"""``shipyard user ...`` and ``shipyard token ...``"""

from __future__ import annotations

import sys

import click

from shipyard.cli.context import client, name_option
from shipyard.cli.output import output_option, print_many, print_one

USER_COLUMNS = (
    "name",
    "display_name",
    "email",
    "is_admin",
    "disabled",
    "has_password",
    "created_at",
)
TOKEN_COLUMNS = ("id", "name", "prefix", "created_at", "expires_at", "revoked_at")


@click.group("user")
def user() -> None:
    """Users (admins only)."""


@user.command("create")
@name_option
@click.option("--display-name", help="The name shown for the user.")
@click.option("--email", help="The user's email address.")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user an administrator.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read a Studio password from standard input (never from the command line).",
)
@output_option
def create_user(
    name: str,
    display_name: str | None,
    email: str | None,
    is_admin: bool,
    password_stdin: bool,
    output: str,
) -> None:
    """Create a user (then give them a token: shipyard token create --user NAME)."""
    password = _read_password() if password_stdin else None
    with client() as c:
        created = c.users.create(
            name, display_name=display_name, email=email, is_admin=is_admin, password=password
        )
    print_one(created, output)


@user.command("set-password")
@name_option
@output_option
def set_password(name: str, output: str) -> None:
    """Set a user's Studio password, read from standard input (or asked for on a terminal)."""
    with client() as c:
        print_one(c.users.set_password(name, _read_password()), output)


@user.command("change-password")
@output_option
def change_password(output: str) -> None:
    """Change your own Studio password. On a terminal both are asked for; piped, the first
    line is the current password (empty if you have none yet) and the second the new one."""
    if sys.stdin.isatty():
        current = str(
            click.prompt(
                "Current password (empty if none)", hide_input=True, default="", show_default=False
            )
        )
        new = _read_password()
    else:
        current = sys.stdin.readline().rstrip("\r\n")
        new = sys.stdin.readline().rstrip("\r\n")
    with client() as c:
        print_one(c.users.change_my_password(new, current_password=current or None), output)


def _read_password() -> str:
    """From a terminal: asked twice, not echoed. Piped: the first line of standard input."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@user.command("list")
@output_option
def list_users(output: str) -> None:
    """List users."""
    with client() as c:
        print_many(c.users.list(), output, USER_COLUMNS)


@user.command("show")
@click.option("-n", "--name", help="The user's name; default: you.")
@output_option
def show_user(name: str | None, output: str) -> None:
    """Show a user (yourself without -n)."""
    with client() as c:
        print_one(c.users.get(name) if name else c.users.me(), output)


@user.command("disable")
@name_option
@output_option
def disable_user(name: str, output: str) -> None:
    """Disable a user: their tokens stop working at once."""
    with client() as c:
        print_one(c.users.disable(name), output)


@user.command("enable")
@name_option
@output_option
def enable_user(name: str, output: str) -> None:
    """Enable a disabled user again."""
    with client() as c:
        print_one(c.users.enable(name), output)


@click.group("token")
def token() -> None:
    """Personal access tokens."""


@token.command("create")
@click.option("-n", "--name", required=True, help="What the token is for, e.g. ci.")
@click.option("--expires-in-days", type=int, help="Lifetime in days (server default: 90).")
@click.option("--user", help="Create it for another user (admins only).")
@output_option
def create_token(name: str, expires_in_days: int | None, user: str | None, output: str) -> None:
    """Create a token. It is printed once and cannot be shown again."""
    with client() as c:
        created = c.tokens.create(name, expires_in_days=expires_in_days, user=user)
    print_one(created, output)
    if output == "table":
        click.echo("Copy the token now: it is not stored and will not be shown again.", err=True)


@token.command("list")
@click.option("--user", help="Another user's tokens (admins only).")
@output_option
def list_tokens(user: str | None, output: str) -> None:
    """List tokens by prefix (the tokens themselves are never shown)."""
    with client() as c:
        print_many(c.tokens.list(user=user), output, TOKEN_COLUMNS)


@token.command("revoke")
@click.option("--id", "token_id", required=True, help="The token's id (see token list).")
@output_option
def revoke_token(token_id: str, output: str) -> None:
    """Revoke a token: it stops working at once."""
    with client() as c:
        print_one(c.tokens.revoke(token_id), output)
