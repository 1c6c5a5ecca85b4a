"""``shipyard batch-endpoint ...`` and ``shipyard batch-deployment ...``, as ``az ml``'s.

Both read Azure ML's YAML (``batchEndpoint``, ``modelBatchDeployment``,
``pipelineComponentBatchDeployment``); a deployment file's local code folder is uploaded and
a local model folder registered before it is sent, and ``invoke --input ./folder`` uploads the
folder first (see sdk/batch_endpoints.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from shipyard.cli.context import client, name_option, set_option
from shipyard.cli.endpoint_files import (
    deployment_spec,
    endpoint_changes,
    endpoint_override,
    endpoint_spec,
    file_required,
    name_override,
    required_endpoint_option,
    workspace_option,
)
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.domain.batch_endpoints import INPUT_TYPES

ENDPOINT_COLUMNS = ("name", "defaults", "scoring_uri")
DEPLOYMENT_COLUMNS = ("name", "type", "model", "compute", "is_default")
JOB_COLUMNS = ("name", "status", "display_name", "creation_time")

endpoint_option = required_endpoint_option("batch")


@click.group("batch-endpoint")
def batch_endpoint() -> None:
    """Batch endpoints: score data as jobs, through a default deployment."""


@batch_endpoint.command("create")
@file_required
@name_override
@workspace_option
@set_option
@output_option
def create_endpoint(
    file: str, name: str | None, workspace: str, overrides: tuple[str, ...], output: str
) -> None:
    """Create a batch endpoint from a YAML file."""
    document, spec, flags = endpoint_spec(file, overrides, name)
    with client() as c:
        operations = c.workspace(workspace).batch_endpoints
        made = with_file(document, lambda: operations.create(spec), flags)
    print_one(made, output)


@batch_endpoint.command("show")
@name_option
@workspace_option
@output_option
def show_endpoint(name: str, workspace: str, output: str) -> None:
    """Show a batch endpoint: its default deployment and scoring URI."""
    with client() as c:
        print_one(c.workspace(workspace).batch_endpoints.get(name), output)


@batch_endpoint.command("list")
@workspace_option
@output_option
def list_endpoints(workspace: str, output: str) -> None:
    """List the workspace's batch endpoints by name."""
    with client() as c:
        print_many(c.workspace(workspace).batch_endpoints.list(), output, ENDPOINT_COLUMNS)


@batch_endpoint.command("update")
@name_option
@workspace_option
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="A YAML file.")
@click.option("--default-deployment", help="Make this deployment the default.")
@set_option
@output_option
def update_endpoint(
    name: str,
    workspace: str,
    file: str | None,
    default_deployment: str | None,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change a batch endpoint's default deployment, description or tags."""
    document, changes = endpoint_changes(file, overrides)
    flags: set[str] = set()
    if default_deployment is not None:
        changes["defaults"] = {"deployment_name": default_deployment}
        flags.add("defaults")
    if not changes:
        raise click.UsageError("nothing to change: give -f or --default-deployment")
    with client() as c:
        operations = c.workspace(workspace).batch_endpoints
        made = with_file(
            document, lambda: operations.update_from_spec(name, changes), frozenset(flags)
        )
    print_one(made, output)


@batch_endpoint.command("invoke")
@name_option
@workspace_option
@click.option(
    "-i",
    "--input",
    "data",
    required=True,
    help="The data: a local folder or file (uploaded), a datastore URI or azureml:<data>@latest.",
)
@click.option(
    "--input-type",
    type=click.Choice(INPUT_TYPES),
    help="A folder (uri_folder, the default) or one file (uri_file).",
)
@click.option("-d", "--deployment-name", help="Run this deployment instead of the default.")
@click.option("--experiment-name", help="The job's experiment (the endpoint's name by default).")
@output_option
def invoke_endpoint(
    name: str,
    workspace: str,
    data: str,
    input_type: str | None,
    deployment_name: str | None,
    experiment_name: str | None,
    output: str,
) -> None:
    """Start a scoring job and print it; follow it with `shipyard job stream -n NAME`."""
    local = Path(data).expanduser()
    if input_type is None and local.is_file():
        input_type = "uri_file"
    with client() as c:
        job = c.workspace(workspace).batch_endpoints.invoke(
            name,
            input=data,
            input_type=input_type,
            deployment_name=deployment_name,
            experiment_name=experiment_name,
        )
    print_one(job, output)


@batch_endpoint.command("list-jobs")
@name_option
@workspace_option
@output_option
def list_jobs(name: str, workspace: str, output: str) -> None:
    """List the jobs invoking the endpoint started, newest first."""
    with client() as c:
        print_many(c.workspace(workspace).batch_endpoints.list_jobs(name), output, JOB_COLUMNS)


@batch_endpoint.command("delete")
@name_option
@workspace_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_endpoint(name: str, workspace: str, yes: bool) -> None:
    """Delete a batch endpoint with its deployments (the jobs it started stay)."""
    if not yes:
        click.confirm(f"delete batch endpoint {name} and all its deployments?", abort=True)
    with client() as c:
        c.workspace(workspace).batch_endpoints.delete(name)
    click.echo(f"batch endpoint {name} deleted from workspace {workspace}", err=True)


# -- deployments ---------------------------------------------------------------------------------


@click.group("batch-deployment")
def batch_deployment() -> None:
    """Batch deployments: a model and scoring script, or a pipeline component, behind a batch
    endpoint."""


@batch_deployment.command("create")
@file_required
@name_override
@endpoint_override
@workspace_option
@click.option("--set-default", is_flag=True, help="Make it the endpoint's default.")
@set_option
@output_option
def create_deployment(
    file: str,
    name: str | None,
    endpoint: str | None,
    workspace: str,
    set_default: bool,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Create a deployment from a YAML file (local code and model folders are uploaded); an
    endpoint's first deployment is its default."""
    document, spec, flags = deployment_spec(file, overrides, name, endpoint)
    base_dir = Path(file).resolve().parent
    with client() as c:
        operations = c.workspace(workspace).batch_deployments
        made = with_file(
            document,
            lambda: operations.create(spec, set_default=set_default, base_dir=base_dir),
            flags,
        )
    print_one(made, output)


@batch_deployment.command("update")
@file_required
@click.option("-n", "--name", help="The deployment (overrides the file's).")
@endpoint_override
@workspace_option
@click.option("--set-default", is_flag=True, help="Make it the endpoint's default.")
@set_option
@output_option
def update_deployment(
    file: str,
    name: str | None,
    endpoint: str | None,
    workspace: str,
    set_default: bool,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change a deployment from its YAML file; jobs already started keep what they had."""
    document, spec, flags = deployment_spec(file, overrides, name, endpoint)
    base_dir = Path(file).resolve().parent
    with client() as c:
        operations = c.workspace(workspace).batch_deployments
        made = with_file(
            document,
            lambda: operations.update(spec, set_default=set_default, base_dir=base_dir),
            flags,
        )
    print_one(made, output)


@batch_deployment.command("show")
@name_option
@endpoint_option
@workspace_option
@output_option
def show_deployment(name: str, endpoint: str, workspace: str, output: str) -> None:
    """Show a deployment: its pinned model and environment, compute and settings."""
    with client() as c:
        print_one(c.workspace(workspace).batch_deployments.get(name, endpoint), output)


@batch_deployment.command("list")
@endpoint_option
@workspace_option
@output_option
def list_deployments(endpoint: str, workspace: str, output: str) -> None:
    """List an endpoint's deployments by name."""
    with client() as c:
        found = c.workspace(workspace).batch_deployments.list(endpoint)
        print_many(found, output, DEPLOYMENT_COLUMNS)


@batch_deployment.command("delete")
@name_option
@endpoint_option
@workspace_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_deployment(name: str, endpoint: str, workspace: str, yes: bool) -> None:
    """Delete a deployment (not the default while the endpoint has others)."""
    if not yes:
        click.confirm(f"delete deployment {name} of batch endpoint {endpoint}?", abort=True)
    with client() as c:
        c.workspace(workspace).batch_deployments.delete(name, endpoint)
    click.echo(f"deployment {name} deleted from batch endpoint {endpoint}", err=True)
