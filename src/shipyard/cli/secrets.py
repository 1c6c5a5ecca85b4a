"""``shipyard secret ...``: a workspace's key vault.

A value is never a command-line argument (it would be in the shell's history and in every
process listing): it comes from a file or from standard input, and on a terminal it is asked
for without echo.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shipyard.cli.context import client, name_option
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.schemas.secrets import MAX_SECRET_BYTES

LIST_COLUMNS = ("name", "updated_at", "updated_by", "created_at", "created_by")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace whose key vault holds the secret."
)


@click.group("secret")
def secret() -> None:
    """Secrets in a workspace's key vault (values encrypted at rest, never printed unasked)."""


def _without_final_newline(raw: bytes) -> bytes:
    """Files and `echo` end their text with a newline that is not part of the secret."""
    for ending in (b"\r\n", b"\n"):
        if raw.endswith(ending):
            return raw[: -len(ending)]
    return raw


def _read_value(value_file: str | None) -> str:
    if value_file is None and sys.stdin.isatty():
        return str(click.prompt("Value", hide_input=True, confirmation_prompt=True))
    limit = MAX_SECRET_BYTES + 2  # room for the final newline that is dropped
    if value_file is None:
        raw = sys.stdin.buffer.read(limit + 1)
        where = "standard input"
    else:
        try:
            with Path(value_file).open("rb") as handle:
                raw = handle.read(limit + 1)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {value_file}: {exc.strerror}", param_hint="--value-file"
            ) from exc
        where = value_file
    if len(raw) > limit:
        raise click.UsageError(f"the value in {where} is over {MAX_SECRET_BYTES} bytes")
    try:
        value = _without_final_newline(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"the value in {where} is not UTF-8 text") from exc
    if not value:
        raise click.UsageError(f"the value in {where} is empty")
    return value


@secret.command("set")
@name_option
@workspace_option
@click.option(
    "--value-file",
    type=click.Path(dir_okay=False),
    help="Read the value from this file (else from standard input). One final newline is dropped.",
)
@output_option
def set_(name: str, workspace: str, value_file: str | None, output: str) -> None:
    """Create a secret or replace its value, read from --value-file or standard input."""
    value = _read_value(value_file)
    with client() as c:
        print_one(c.workspace(workspace).secrets.set(name, value), output)


@secret.command("list")
@workspace_option
@output_option
def list_(workspace: str, output: str) -> None:
    """List the workspace's secrets: names and dates, never values."""
    with client() as c:
        print_many(c.workspace(workspace).secrets.list(), output, LIST_COLUMNS)


@secret.command("show")
@name_option
@workspace_option
@click.option(
    "--reveal",
    is_flag=True,
    help="Print the value (alone, for piping; with -o json or yaml, name and value). Needs "
    "workspaces/secrets/read, and the read is recorded in the audit log.",
)
@output_option
def show(name: str, workspace: str, reveal: bool, output: str) -> None:
    """Show a secret's metadata, or its value with --reveal."""
    with client() as c:
        secrets = c.workspace(workspace).secrets
        if not reveal:
            print_one(secrets.get(name), output)
            return
        value = secrets.get_value(name)
    if output == "table":
        click.echo(value)
    else:
        print_one({"name": name, "value": value}, output)


@secret.command("delete")
@name_option
@workspace_option
def delete(name: str, workspace: str) -> None:
    """Delete a secret (its value cannot be recovered)."""
    with client() as c:
        c.workspace(workspace).secrets.delete(name)
    click.echo(f"secret {name} deleted from workspace {workspace}", err=True)
