"""``shipyard cost report``"""

from __future__ import annotations

from typing import get_args

import click

from shipyard.cli.audit import _time
from shipyard.cli.context import client
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.schemas.costs import CostGrouping

LINE_COLUMNS = ("key", "jobs", "core_hours", "cost")


def grouping(value: str) -> CostGrouping:
    if value not in get_args(CostGrouping):
        raise click.BadParameter(f"{value!r} is not one of {get_args(CostGrouping)}")
    return value  # type: ignore[return-value]


@click.group("cost")
def cost() -> None:
    """What each workspace's jobs cost (compute time x the compute's rate)."""


@cost.command("report")
@click.option("-w", "--workspace", required=True, help="The workspace to report on.")
@click.option(
    "--by",
    type=click.Choice(["experiment", "user", "compute"]),
    default="experiment",
    show_default=True,
    help="What the lines are.",
)
@click.option("--since", metavar="TIME", help="Jobs ended at or after: ISO 8601 or 7d.")
@output_option
def report(workspace: str, by: str, since: str | None, output: str) -> None:
    """Cost per experiment, user or compute, with the total."""
    with client() as api:
        found = api.workspace(workspace).costs.report(by=grouping(by), since=_time(since))
    if output != "table":
        print_one(found, output)
        return
    print_many(found.lines, output, LINE_COLUMNS)
    click.echo(
        f"total: {found.total_jobs} jobs, {found.total_core_hours:.4f} core-hours, "
        f"cost {found.total_cost:.4f}"
    )
