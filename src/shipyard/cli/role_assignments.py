"""``shipyard role assignment ...``"""

from __future__ import annotations

import click

from shipyard.cli.context import client
from shipyard.cli.output import output_option, print_many, print_one

LIST_COLUMNS = ("id", "role", "principal_type", "principal_name", "scope", "created_at")

workspace_option = click.option("-w", "--workspace", help="At this workspace.")
registry_option = click.option("--registry", help="At this registry.")
global_option = click.option("--global", "at_global", is_flag=True, help="At global scope.")


def _scope(
    workspace: str | None, registry: str | None, at_global: bool, *, required: bool
) -> tuple[str | None, str | None]:
    """(workspace, registry) the command is about; both None for global scope."""
    flags = (("--workspace", workspace), ("--registry", registry), ("--global", at_global))
    given = [flag for flag, value in flags if value]
    if len(given) > 1:
        raise click.UsageError(
            f"give one of --workspace, --registry or --global, not {' and '.join(given)}"
        )
    if required and not given:
        raise click.UsageError(
            "say where: --workspace NAME, --registry NAME, or --global for the whole server"
        )
    return workspace, registry


@click.group("assignment")
def assignment() -> None:
    """Role assignments: a role given to a user, group or service principal at a scope."""


@assignment.command("create")
@click.option("--role", required=True, help='The role, e.g. "Data Scientist".')
@click.option("--user", help="Give it to this user.")
@click.option("--group", help="Give it to this group (its members hold it).")
@click.option("--service-principal", help="Give it to this service principal.")
@workspace_option
@registry_option
@global_option
@output_option
def create(
    role: str,
    user: str | None,
    group: str | None,
    service_principal: str | None,
    workspace: str | None,
    registry: str | None,
    at_global: bool,
    output: str,
) -> None:
    """Give a role to a user, group or service principal, in a workspace, in a registry or
    globally."""
    principals = [p for p in (user, group, service_principal) if p]
    if len(principals) != 1:
        raise click.UsageError("give exactly one of --user, --group or --service-principal")
    workspace, registry = _scope(workspace, registry, at_global, required=True)
    with client() as c:
        created = c.role_assignments.create(
            role=role,
            user=user,
            group=group,
            service_principal=service_principal,
            workspace=workspace,
            registry=registry,
        )
    print_one(created, output)


@assignment.command("list")
@workspace_option
@registry_option
@global_option
@output_option
def list_(workspace: str | None, registry: str | None, at_global: bool, output: str) -> None:
    """List the assignments made in a workspace, in a registry, or (default) at global
    scope."""
    workspace, registry = _scope(workspace, registry, at_global, required=False)
    with client() as c:
        print_many(c.role_assignments.list(workspace, registry=registry), output, LIST_COLUMNS)


@assignment.command("delete")
@click.option("--id", "assignment_id", required=True, help="The assignment's id.")
@workspace_option
@registry_option
def delete(assignment_id: str, workspace: str | None, registry: str | None) -> None:
    """Remove an assignment (from the workspace or registry it was made in, or global
    scope)."""
    workspace, registry = _scope(workspace, registry, False, required=False)
    with client() as c:
        c.role_assignments.delete(assignment_id, workspace=workspace, registry=registry)
    click.echo(f"role assignment {assignment_id} deleted", err=True)
