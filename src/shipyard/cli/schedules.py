"""``shipyard schedule ...``: triggers that submit a job on a cadence, from Azure-shaped YAML.

``create_job`` in the file names a job YAML file (relative to the schedule file's folder) or
holds the job inline; its local code and inputs are uploaded once, when the schedule is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from shipyard.cli.context import client, name_option, set_option
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.sdk.yaml import load_yaml_file, parse_override

LIST_COLUMNS = ("name", "trigger.type", "is_enabled", "next_fire_time", "last_fire_time")
_JOB_PREFIX = "create_job."
FIRE_COLUMNS = ("fire_time", "job_name", "skipped", "error")

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace the schedule belongs to."
)


@click.group("schedule")
def schedule() -> None:
    """Schedules: cron or recurrence triggers that submit a job (retraining on a cadence)."""


@schedule.command("create")
@click.option(
    "-f",
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The schedule's YAML file (Azure ML's shape: trigger and create_job).",
)
@click.option("-n", "--name", help="The name (overrides the file's).")
@workspace_option
@set_option
@output_option
def create(
    file: str, name: str | None, workspace: str, overrides: tuple[str, ...], output: str
) -> None:
    """Create a schedule from a YAML file; prints it with its next five fire times."""
    # --set create_job.<path>=... changes the job even when the file names a job file: those
    # are sent as the schedule's overrides, merged into the job by the server.
    job_sets = [item for item in overrides if item.startswith(_JOB_PREFIX)]
    document = load_yaml_file(file, [item for item in overrides if item not in job_sets])
    spec: dict[str, Any] = dict(document.data)
    spec.pop("$schema", None)
    if job_sets:
        changes = dict(parse_override(item) for item in job_sets)
        spec["overrides"] = {
            **(spec.get("overrides") or {}),
            **{path.removeprefix(_JOB_PREFIX): value for path, value in changes.items()},
        }
    if name:
        spec["name"] = name
    if not spec.get("name"):
        raise click.UsageError("give the schedule a name: in the file, or with -n NAME")
    base_dir = Path(file).resolve().parent
    from_flags = frozenset({"name"} if name else set())
    with client() as c:
        operations = c.workspace(workspace).schedules
        made = with_file(
            document, lambda: operations.create_from_spec(spec, base_dir=base_dir), from_flags
        )
    print_one(made, output)


@schedule.command("show")
@name_option
@workspace_option
@click.option("--fires", is_flag=True, help="List its fires (most recent first) instead.")
@output_option
def show(name: str, workspace: str, fires: bool, output: str) -> None:
    """Show a schedule with its next five fire times, or with --fires the jobs it submitted."""
    with client() as c:
        operations = c.workspace(workspace).schedules
        if fires:
            print_many(operations.fires(name), output, FIRE_COLUMNS)
        else:
            print_one(operations.get(name), output)


@schedule.command("list")
@workspace_option
@output_option
def list_(workspace: str, output: str) -> None:
    """List the workspace's schedules by name."""
    with client() as c:
        print_many(c.workspace(workspace).schedules.list(), output, LIST_COLUMNS)


@schedule.command("enable")
@name_option
@workspace_option
@output_option
def enable(name: str, workspace: str, output: str) -> None:
    """Fire again, from the next fire time after now."""
    with client() as c:
        print_one(c.workspace(workspace).schedules.enable(name), output)


@schedule.command("disable")
@name_option
@workspace_option
@output_option
def disable(name: str, workspace: str, output: str) -> None:
    """Stop firing (until enabled again)."""
    with client() as c:
        print_one(c.workspace(workspace).schedules.disable(name), output)


@schedule.command("delete")
@name_option
@workspace_option
def delete(name: str, workspace: str) -> None:
    """Delete a schedule; the jobs it submitted stay."""
    with client() as c:
        c.workspace(workspace).schedules.delete(name)
    click.echo(f"schedule {name} deleted from workspace {workspace}", err=True)
