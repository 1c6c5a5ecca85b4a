"""``shipyard role assignment ...``"""

from __future__ import annotations

import click

from shipyard.cli.context import client
from shipyard.cli.output import output_option, print_many, print_one

LIST_COLUMNS = ("id", "role", "principal_type", "principal_name", "scope", "created_at")

workspace_option = click.option("-w", "--workspace", help="At this workspace.")
global_option = click.option("--global", "at_global", is_flag=True, help="At global scope.")


def _workspace(workspace: str | None, at_global: bool, *, required: bool) -> str | None:
    """The workspace the command is about; None for global scope."""
    if workspace and at_global:
        raise click.UsageError("give --workspace or --global, not both")
    if required and not (workspace or at_global):
        raise click.UsageError("say where: --workspace NAME, or --global for the whole server")
    return workspace


@click.group("assignment")
def assignment() -> None:
    """Role assignments: a role given to a user, group or service principal at a scope."""


@assignment.command("create")
@click.option("--role", required=True, help='The role, e.g. "Data Scientist".')
@click.option("--user", help="Give it to this user.")
@click.option("--group", help="Give it to this group (its members hold it).")
@click.option("--service-principal", help="Give it to this service principal.")
@workspace_option
@global_option
@output_option
def create(
    role: str,
    user: str | None,
    group: str | None,
    service_principal: str | None,
    workspace: str | None,
    at_global: bool,
    output: str,
) -> None:
    """Give a role to a user, group or service principal, in a workspace or globally."""
    principals = [p for p in (user, group, service_principal) if p]
    if len(principals) != 1:
        raise click.UsageError("give exactly one of --user, --group or --service-principal")
    where = _workspace(workspace, at_global, required=True)
    with client() as c:
        created = c.role_assignments.create(
            role=role,
            user=user,
            group=group,
            service_principal=service_principal,
            workspace=where,
        )
    print_one(created, output)


@assignment.command("list")
@workspace_option
@global_option
@output_option
def list_(workspace: str | None, at_global: bool, output: str) -> None:
    """List the assignments made in a workspace, or (default) at global scope."""
    where = _workspace(workspace, at_global, required=False)
    with client() as c:
        print_many(c.role_assignments.list(where), output, LIST_COLUMNS)


@assignment.command("delete")
@click.option("--id", "assignment_id", required=True, help="The assignment's id.")
@workspace_option
def delete(assignment_id: str, workspace: str | None) -> None:
    """Remove an assignment (from the workspace it was made in, or global scope)."""
    with client() as c:
        c.role_assignments.delete(assignment_id, workspace=workspace)
    click.echo(f"role assignment {assignment_id} deleted", err=True)
