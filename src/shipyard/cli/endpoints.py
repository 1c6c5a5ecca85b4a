"""``shipyard online-endpoint ...`` and ``shipyard online-deployment ...``, as ``az ml``'s.

Both read Azure ML's YAML (``managedOnlineEndpoint``, ``managedOnlineDeployment``); a
deployment file's local code folder is uploaded and a local model folder registered before it
is sent (see sdk/endpoints.py).
"""

from __future__ import annotations

import json
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
from shipyard.schemas.endpoints import EndpointKeysRead
from shipyard.sdk.endpoints import traffic_of

ENDPOINT_COLUMNS = ("name", "auth_mode", "traffic", "provisioning_state", "scoring_uri")
DEPLOYMENT_COLUMNS = ("name", "model", "instance_count", "provisioning_state", "generation")

endpoint_option = required_endpoint_option("online")


@click.group("online-endpoint")
def online_endpoint() -> None:
    """Online endpoints: stable scoring URLs with keys or tokens, in front of deployments."""


@online_endpoint.command("create")
@file_required
@name_override
@workspace_option
@set_option
@output_option
def create_endpoint(
    file: str, name: str | None, workspace: str, overrides: tuple[str, ...], output: str
) -> None:
    """Create an endpoint from a YAML file (its keys are made now: see get-credentials)."""
    document, spec, flags = endpoint_spec(file, overrides, name)
    with client() as c:
        operations = c.workspace(workspace).online_endpoints
        made = with_file(document, lambda: operations.create(spec), flags)
    print_one(made, output)


@online_endpoint.command("show")
@name_option
@workspace_option
@output_option
def show_endpoint(name: str, workspace: str, output: str) -> None:
    """Show an endpoint, with its scoring URI and traffic split, and each deployment's last
    hour: requests, error rate, latency percentiles (ms), instance restarts."""
    with client() as c:
        operations = c.workspace(workspace).online_endpoints
        shown = operations.get(name).model_dump(mode="json")
        metrics = operations.get_metrics(name)
    if metrics.deployments:  # an endpoint without deployments has nothing to summarise
        shown["last_hour"] = {
            d.deployment: d.summary.model_dump(mode="json") for d in metrics.deployments
        }
    print_one(shown, output)


@online_endpoint.command("list")
@workspace_option
@output_option
def list_endpoints(workspace: str, output: str) -> None:
    """List the workspace's online endpoints by name."""
    with client() as c:
        print_many(c.workspace(workspace).online_endpoints.list(), output, ENDPOINT_COLUMNS)


@online_endpoint.command("update")
@name_option
@workspace_option
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="A YAML file.")
@click.option("--traffic", help='Live traffic per deployment, e.g. "blue=90 green=10".')
@click.option("--mirror-traffic", help='Mirrored traffic, e.g. "green=10" (at most 50).')
@set_option
@output_option
def update_endpoint(
    name: str,
    workspace: str,
    file: str | None,
    traffic: str | None,
    mirror_traffic: str | None,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change an endpoint's traffic split, mirroring, description, tags or auth mode."""
    document, changes = endpoint_changes(file, overrides)
    flags: set[str] = set()
    if traffic is not None:
        changes["traffic"] = traffic_of(traffic)
        flags.add("traffic")
    if mirror_traffic is not None:
        changes["mirror_traffic"] = traffic_of(mirror_traffic, "mirror_traffic")
        flags.add("mirror_traffic")
    if not changes:
        raise click.UsageError("nothing to change: give -f, --traffic or --mirror-traffic")
    with client() as c:
        operations = c.workspace(workspace).online_endpoints
        made = with_file(
            document, lambda: operations.update_from_spec(name, changes), frozenset(flags)
        )
    print_one(made, output)


@online_endpoint.command("get-credentials")
@name_option
@workspace_option
@output_option
def get_credentials(name: str, workspace: str, output: str) -> None:
    """Print the keys (primary_key, secondary_key) or, for aml_token auth, a new token
    (access_token, expiry_time_utc)."""
    with client() as c:
        found = c.workspace(workspace).online_endpoints.get_credentials(name)
    if output == "table" and isinstance(found, EndpointKeysRead):
        # One key per line, nothing else: easy to copy, easy to pipe.
        click.echo(json.dumps(found.model_dump(), indent=2))
        return
    print_one(found, output)


@online_endpoint.command("regenerate-keys")
@name_option
@workspace_option
@click.option(
    "--key-type",
    type=click.Choice(["primary", "secondary"]),
    default="primary",
    show_default=True,
    help="The key to replace; the other keeps working.",
)
def regenerate_keys(name: str, workspace: str, key_type: str) -> None:
    """Replace one key of an endpoint; the old key stops working at once."""
    with client() as c:
        c.workspace(workspace).online_endpoints.regenerate_keys(name, key_type)
    click.echo(f"{key_type} key of online endpoint {name} regenerated", err=True)


@online_endpoint.command("invoke")
@name_option
@workspace_option
@click.option(
    "-r",
    "--request-file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The request body (JSON, or what the scoring script reads).",
)
@click.option(
    "-d",
    "--deployment-name",
    help="Send it to this deployment, whatever the traffic split says.",
)
def invoke_endpoint(
    name: str, workspace: str, request_file: str, deployment_name: str | None
) -> None:
    """Score the request file at the endpoint (with its key or a token) and print the
    answer."""
    with client() as c:
        answer = c.workspace(workspace).online_endpoints.invoke(
            name, request_file=request_file, deployment_name=deployment_name
        )
    click.echo(answer)


@online_endpoint.command("delete")
@name_option
@workspace_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_endpoint(name: str, workspace: str, yes: bool) -> None:
    """Delete an endpoint with its deployments and keys."""
    if not yes:
        click.confirm(f"delete online endpoint {name} and all its deployments?", abort=True)
    with client() as c:
        c.workspace(workspace).online_endpoints.delete(name)
    click.echo(f"online endpoint {name} deleted from workspace {workspace}", err=True)


# -- deployments ---------------------------------------------------------------------------------


@click.group("online-deployment")
def online_deployment() -> None:
    """Deployments: a model, scoring code and an environment behind an online endpoint."""


@online_deployment.command("create")
@file_required
@name_override
@endpoint_override
@workspace_option
@click.option("--all-traffic", is_flag=True, help="Send it 100% of the endpoint's traffic.")
@set_option
@output_option
def create_deployment(
    file: str,
    name: str | None,
    endpoint: str | None,
    workspace: str,
    all_traffic: bool,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Create a deployment from a YAML file (local code and model folders are uploaded)."""
    document, spec, flags = deployment_spec(file, overrides, name, endpoint)
    base_dir = Path(file).resolve().parent
    with client() as c:
        operations = c.workspace(workspace).online_deployments

        made = with_file(
            document,
            lambda: operations.create(spec, all_traffic=all_traffic, base_dir=base_dir),
            flags,
        )
    print_one(made, output)


@online_deployment.command("update")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="A YAML file.")
@click.option("-n", "--name", help="The deployment (overrides the file's).")
@endpoint_override
@workspace_option
@click.option("--instance-count", type=click.IntRange(min=1), help="Scale to this many.")
@set_option
@output_option
def update_deployment(
    file: str | None,
    name: str | None,
    endpoint: str | None,
    workspace: str,
    instance_count: int | None,
    overrides: tuple[str, ...],
    output: str,
) -> None:
    """Change a deployment from its YAML file (or just --instance-count); its instances are
    replaced one at a time."""
    if file:
        document, spec, flags = deployment_spec(file, overrides, name, endpoint)
        base_dir: Path | None = Path(file).resolve().parent
    else:
        if not name or not endpoint:
            raise click.UsageError("without -f, give -n NAME and -e ENDPOINT")
        if overrides:
            raise click.UsageError("--set changes a file's fields: give the file with -f")
        document, flags, base_dir = None, frozenset[str](), None
        spec = {"name": name, "endpoint_name": endpoint}
    if instance_count is not None:
        spec["instance_count"] = instance_count
    if set(spec) <= {"name", "endpoint_name"}:
        raise click.UsageError("nothing to change: give -f or --instance-count")
    with client() as c:
        operations = c.workspace(workspace).online_deployments

        made = with_file(document, lambda: operations.update(spec, base_dir=base_dir), flags)
    print_one(made, output)


@online_deployment.command("show")
@name_option
@endpoint_option
@workspace_option
@output_option
def show_deployment(name: str, endpoint: str, workspace: str, output: str) -> None:
    """Show a deployment: its pinned model and environment, state and instances."""
    with client() as c:
        print_one(c.workspace(workspace).online_deployments.get(name, endpoint), output)


@online_deployment.command("list")
@endpoint_option
@workspace_option
@output_option
def list_deployments(endpoint: str, workspace: str, output: str) -> None:
    """List an endpoint's deployments by name."""
    with client() as c:
        found = c.workspace(workspace).online_deployments.list(endpoint)
        print_many(found, output, DEPLOYMENT_COLUMNS)


@online_deployment.command("get-logs")
@name_option
@endpoint_option
@workspace_option
@click.option("--lines", type=click.IntRange(1, 10_000), help="The last lines (100 by default).")
def get_logs(name: str, endpoint: str, workspace: str, lines: int | None) -> None:
    """Print the last lines its instances wrote."""
    with client() as c:
        text = c.workspace(workspace).online_deployments.get_logs(name, endpoint, lines=lines)
    click.echo(text, nl=False)


@online_deployment.command("delete")
@name_option
@endpoint_option
@workspace_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_deployment(name: str, endpoint: str, workspace: str, yes: bool) -> None:
    """Delete a deployment (refused while it takes traffic: set it to 0 first)."""
    if not yes:
        click.confirm(f"delete deployment {name} of online endpoint {endpoint}?", abort=True)
    with client() as c:
        c.workspace(workspace).online_deployments.delete(name, endpoint)
    click.echo(f"deployment {name} deleted from online endpoint {endpoint}", err=True)
