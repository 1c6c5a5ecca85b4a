"""``shipyard job ...``: command jobs (Azure ML's ``az ml job``).

``job create -f job.yml`` loads Azure ML's command job YAML, uploads the local ``code``
folder and local inputs (relative to the file's folder, as in Azure ML) with a progress bar,
and submits the job; ``--stream`` then prints the job's output as it comes. A job that does
not end ``Completed`` makes ``--stream`` and ``job stream`` exit with status 1, so a script
(or CI) can run a job and fail when it fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, TextIO, cast

import click

from shipyard.cli.context import client, set_option
from shipyard.cli.data import UploadBar
from shipyard.cli.files import with_file
from shipyard.cli.output import output_option, print_many, print_one
from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.schemas.jobs import JobRead
from shipyard.schemas.tracking import RunRead
from shipyard.sdk.client import Client
from shipyard.sdk.runs import JobOperations
from shipyard.sdk.yaml import YamlDocument, load_yaml_file

LIST_COLUMNS = ("name", "display_name", "status", "experiment_name", "compute", "creation_time")
SUMMARY = ("name", "id", "display_name", "status", "experiment_name", "compute", "environment")
STATUSES = (
    "NotStarted",
    "Queued",
    "Preparing",
    "Running",
    "Finalizing",
    "Completed",
    "Failed",
    "CancelRequested",
    "Canceled",
    "NotResponding",
)
#: The output every job has: the files it wrote under ./outputs and ./logs, and its logs.
ARTIFACTS = "artifacts"

workspace_option = click.option(
    "-w", "--workspace", required=True, help="The workspace the job runs in."
)
name_option = click.option("-n", "--name", required=True, help="The job's name.")


class JobNotCompleted(click.ClickException):
    """A followed job ended Failed or Canceled: exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


@click.group("job")
def job() -> None:
    """Jobs: commands run on compute with their code, environment, inputs and outputs."""


def _jobs(c: Client, workspace: str) -> JobOperations:
    return c.workspace(workspace).jobs


def _get(jobs: JobOperations, name: str) -> JobRead | RunRead:
    """A job by name, or a run by id; not found, the error is about the job asked for."""
    try:
        return jobs.get(name)
    except NotFoundError as exc:
        shown = name if len(name) <= 100 else name[:97] + "..."
        raise NotFoundError(
            f"job {shown!r} does not exist", code="job_not_found", field="name"
        ) from exc


def _spec(document: YamlDocument) -> dict[str, Any]:
    spec = dict(document.data)
    kind = spec.get("type", "command")
    if kind not in ("command", "pipeline", "sweep"):
        raise document.error(
            InvalidInputError(
                f"type {kind!r} is not supported: Shipyard runs command, pipeline and sweep "
                "jobs (type: command, type: pipeline, type: sweep, or no type for a command "
                "job)",
                code="unsupported_job_type",
                field="type",
            )
        )
    return spec


@job.command("create")
@click.option(
    "-f",
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The job's YAML file (Azure ML's command, pipeline or sweep job).",
)
@click.option("-n", "--name", help="The job's name (overrides the file's; made up if unset).")
@click.option("--experiment-name", help="The experiment (overrides the file's).")
@click.option("--stream", is_flag=True, help="Print the job's output until it ends.")
@set_option
@workspace_option
@output_option
def create(
    file: str,
    name: str | None,
    experiment_name: str | None,
    stream: bool,
    overrides: tuple[str, ...],
    workspace: str,
    output: str,
) -> None:
    """Submit a command, pipeline or sweep job from a YAML file. The local code folder and
    local inputs are uploaded first (paths relative to the file's folder; unchanged code
    uploads nothing)."""
    document = load_yaml_file(file, overrides)
    spec = _spec(document)
    flags = {"name": name, "experiment_name": experiment_name}
    spec.update({k: v for k, v in flags.items() if v is not None})
    base_dir = Path(file).resolve().parent
    from_flags = frozenset(k for k, v in flags.items() if v is not None)
    with client() as c:
        jobs = _jobs(c, workspace)
        with UploadBar() as bar:
            made = with_file(
                document,
                lambda: jobs.create(spec, base_dir=base_dir, progress=bar),
                from_flags,
            )
        if not stream:
            _print_job(made, output, summary=True)
            click.echo(f"follow it: shipyard job stream -n {made.name} -w {workspace}", err=True)
            return
        click.echo(f"job {made.name} submitted ({made.status}); streaming its output", err=True)
        _follow(jobs, made.name, workspace)


@job.command("show")
@name_option
@workspace_option
@output_option
def show(name: str, workspace: str, output: str) -> None:
    """Show a job: its spec as submitted (references pinned), status history, inputs,
    outputs, exit code, error and cost."""
    with client() as c:
        _print_job(_get(_jobs(c, workspace), name), output)


@job.command("list")
@click.option("--parent-job-name", help="Only this job's child jobs.")
@click.option(
    "--status",
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only jobs in this status.",
)
@workspace_option
@output_option
def list_(parent_job_name: str | None, status: str | None, workspace: str, output: str) -> None:
    """List the workspace's submitted jobs, by name."""
    with client() as c:
        found = _jobs(c, workspace).list_jobs(parent_job_name=parent_job_name, status=status)
        print_many(found, output, LIST_COLUMNS)


@job.command("stream")
@name_option
@workspace_option
def stream_(name: str, workspace: str) -> None:
    """Print the job's output (from its start) until the job ends; exit status 1 unless it
    ends Completed."""
    with client() as c:
        _follow(_jobs(c, workspace), name, workspace)


@job.command("cancel")
@name_option
@workspace_option
def cancel(name: str, workspace: str) -> None:
    """Cancel a job: a queued one at once; a running one is stopped (SIGTERM, then SIGKILL
    after the grace period) and ends Canceled."""
    with client() as c:
        found = _jobs(c, workspace).cancel(name)
    if found.status == "CancelRequested":
        click.echo(
            f"cancel requested for job {name}: it ends Canceled once it has stopped", err=True
        )
    else:
        click.echo(f"job {name} is {found.status}", err=True)


@job.command("archive")
@name_option
@workspace_option
def archive(name: str, workspace: str) -> None:
    """Hide a job from `job list` (it keeps everything; `job show` still finds it)."""
    with client() as c:
        _jobs(c, workspace).archive(name)
    click.echo(f"job {name} archived", err=True)


@job.command("restore")
@name_option
@workspace_option
def restore(name: str, workspace: str) -> None:
    """Bring an archived job back into `job list`."""
    with client() as c:
        _jobs(c, workspace).restore_job(name)
    click.echo(f"job {name} restored", err=True)


@job.command("download")
@name_option
@click.option(
    "--output-name",
    default=ARTIFACTS,
    show_default=True,
    help="Which output: 'artifacts' (what the job wrote under ./outputs and ./logs, and its "
    "logs) or one of the job's named outputs.",
)
@click.option(
    "--download-path",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The folder to download into (made if needed).",
)
@workspace_option
def download(name: str, output_name: str, download_path: str, workspace: str) -> None:
    """Download an output's files into DOWNLOAD_PATH/OUTPUT_NAME/."""
    with client() as c:
        jobs = _jobs(c, workspace)
        where = jobs.download(name, output_name=output_name, download_path=download_path)
        found = jobs.get(name)
    if found.status not in ("Completed", "Failed", "Canceled"):
        click.echo(
            f"note: job {name} is {found.status}; its outputs are stored when it ends", err=True
        )
    if not where.is_dir() or not any(where.iterdir()):
        click.echo(f"output {output_name} of job {name} holds no files", err=True)
        return
    click.echo(f"downloaded output {output_name} of job {name} to {where}", err=True)


def _follow(jobs: JobOperations, name: str, workspace: str) -> None:
    """Stream the job's log to standard output; fail (exit 1) unless it ends Completed."""
    out = _LineTracker()
    shown: list[str] = []

    def status(value: str) -> None:
        # Preparing can take a while (an environment build): say where the job is.
        if value and value not in shown and value not in ("Completed", "Failed", "Canceled"):
            shown.append(value)
            click.echo(f"[{name}: {value}]", err=True)

    try:
        ended = jobs.stream(name, cast(TextIO, out), on_status=status)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped following job {name}; it keeps running "
            f"(shipyard job cancel -n {name} -w {workspace} stops it)",
            err=True,
        )
        raise
    if not out.at_line_start:
        click.echo(err=True)  # the summary below starts on its own line (on a terminal)
    took = ""
    if ended.start_time and ended.end_time:
        took = f" in {(ended.end_time - ended.start_time).total_seconds():.1f} s"
    if ended.status == "Completed":
        click.echo(f"job {name} Completed{took}", err=True)
        return
    reason = f": {ended.error}" if ended.error else ""
    raise JobNotCompleted(f"job {name} ended {ended.status}{took}{reason}")


class _LineTracker:
    """Standard output for a job's log, remembering whether the last text ended a line."""

    def __init__(self) -> None:
        self.at_line_start = True

    def write(self, text: str) -> int:
        if text:
            sys.stdout.write(text)
            self.at_line_start = text.endswith("\n")
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _print_job(found: Any, output: str, *, summary: bool = False) -> None:
    """A job as -o says. The table leaves out empty fields, shows the status history one
    change per entry, and only the main fields for ``summary``."""
    if output != "table" or not isinstance(found, JobRead):
        print_one(found, output)
        return
    data = found.model_dump(mode="json")
    if summary:
        data = {key: data[key] for key in SUMMARY}
    else:
        data["status_history"] = [
            f"{change.status} {change.time:%Y-%m-%d %H:%M:%S}" for change in found.status_history
        ]
    print_one(_without_empty(data), output)


def _without_empty(data: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = _without_empty(value)
        if value is not None and value != {} and value != []:
            kept[key] = value
    return kept
