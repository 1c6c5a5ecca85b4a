"""The ``shipyard`` entry point: command groups, and errors turned into messages and exit codes."""

from __future__ import annotations

import sys

import click

from shipyard._version import __version__
from shipyard.cli.audit import audit
from shipyard.cli.batch_endpoints import batch_deployment, batch_endpoint
from shipyard.cli.components import component
from shipyard.cli.computes import compute
from shipyard.cli.costs import cost
from shipyard.cli.data import data
from shipyard.cli.datastores import datastore
from shipyard.cli.endpoints import online_deployment, online_endpoint
from shipyard.cli.environments import environment
from shipyard.cli.groups import group
from shipyard.cli.jobs import job
from shipyard.cli.login import login
from shipyard.cli.models import model
from shipyard.cli.registries import registry
from shipyard.cli.roles import role
from shipyard.cli.schedules import schedule
from shipyard.cli.secrets import secret
from shipyard.cli.server import admin, db, server
from shipyard.cli.service_principals import service_principal
from shipyard.cli.users import token, user
from shipyard.cli.workspaces import workspace
from shipyard.domain.errors import ShipyardError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shipyard")
def cli() -> None:
    """Shipyard: a self-hosted machine-learning workspace."""


for command in (
    server,
    db,
    login,
    workspace,
    registry,
    user,
    token,
    group,
    service_principal,
    role,
    audit,
    secret,
    datastore,
    data,
    environment,
    component,
    model,
    compute,
    job,
    schedule,
    online_endpoint,
    online_deployment,
    batch_endpoint,
    batch_deployment,
    cost,
    admin,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ShipyardError as exc:
        field = f" (field: {exc.field})" if exc.field and exc.field not in exc.detail else ""
        click.echo(f"error: {exc.detail}{field} [{exc.code}]", err=True)
        sys.exit(1)
