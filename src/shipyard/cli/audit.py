"""``shipyard audit ...``"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import islice

import click

from shipyard.cli.context import client
from shipyard.cli.output import output_option, print_many

LIST_COLUMNS = ("at", "principal", "action", "method", "resource", "outcome", "status")
_AGO = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _time(value: str | None) -> str | None:
    """An ISO 8601 time as given (the SDK checks it), or ``30m``/``12h``/``7d`` ago."""
    if value is None:
        return None
    match = _AGO.match(value.strip())
    if match:
        ago = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (datetime.now(UTC) - ago).isoformat()
    return value


@click.group("audit")
def audit() -> None:
    """The audit log: every change, every denied request, every read of a secret."""


@audit.command("list")
@click.option("-w", "--workspace", help="Only this workspace's events.")
@click.option("--since", metavar="TIME", help="At or after: ISO 8601 (UTC if no zone) or 7d.")
@click.option("--until", metavar="TIME", help="Before: ISO 8601 (UTC if no zone) or 1h.")
@click.option("--principal", help="Only this user's or service principal's events.")
@click.option("--action", help="Only this action, e.g. workspaces/write.")
@click.option(
    "--outcome", type=click.Choice(["succeeded", "failed", "denied"]), help="Only this outcome."
)
@click.option("--max-items", type=click.IntRange(min=1), help="Stop after this many events.")
@output_option
def list_(
    workspace: str | None,
    since: str | None,
    until: str | None,
    principal: str | None,
    action: str | None,
    outcome: str | None,
    max_items: int | None,
    output: str,
) -> None:
    """List audit events, newest first."""
    with client() as c:
        events = c.audit.list(
            workspace,
            since=_time(since),
            until=_time(until),
            principal=principal,
            action=action,
            outcome=outcome,
            page_size=min(max_items, 100) if max_items else None,
        )
        print_many(islice(events, max_items), output, LIST_COLUMNS)
