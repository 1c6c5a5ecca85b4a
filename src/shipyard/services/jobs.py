"""Command jobs: submit, show, list, cancel, and read their logs.

Submitting checks everything a job could fail on before it queues: the command's
expressions against the declared inputs and outputs, every reference (data, models,
environment, code snapshot, secrets, compute) resolved and pinned, so that what runs is
exactly what was checked, and ``name@latest`` means the latest at submit time. The job then
waits in the queue (``services.job_runner`` launches it).
"""

from __future__ import annotations

import re
import secrets as random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain import command_template
from shipyard.domain.asset_uris import datastore_uri
from shipyard.domain.content import UPLOADS_FOLDER, is_digest
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError, ShipyardError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.jobs import (
    CommandJobCreate,
    JobRead,
)
from shipyard.schemas.tracking import TERMINAL
from shipyard.services import lineage
from shipyard.services.authz import Authorizer
from shipyard.services.datastore_uris import Location
from shipyard.services.experiments import get_or_create
from shipyard.services.job_inputs import MODEL_TYPES, IoResolver
from shipyard.services.job_reads import PRIORITIES, job_read
from shipyard.services.paging import split_page
from shipyard.services.secret_references import check_secret_references
from shipyard.services.secrets import SecretService
from shipyard.services.workspace_rows import workspace_row
from shipyard.services.workspaces import DEFAULT_DATASTORE
from shipyard.store import jobs as job_store
from shipyard.store import tracking as tracking_store
from shipyard.store.base import new_id, utcnow
from shipyard.store.computes import get_compute
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import ExperimentRow, JobRow
from shipyard.store.uploads import get_upload
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

LOCAL_COMPUTE = "local"
#: The output every job has: its run artifacts (Azure ML's name for it).
ARTIFACTS_OUTPUT = "artifacts"
DEFAULT_EXPERIMENT = "Default"
DEFAULT_ENVIRONMENT = "azureml:shipyard-minimal@latest"
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_NAME_ALPHABET = string.ascii_lowercase + string.digits


class EnvironmentPinner(Protocol):
    """Pins a job's environment at submit (services.environments provides it)."""

    def pin(
        self, principal: Principal, workspace: str, ref: str | dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON description the launcher can build from later; 4xx naming ``environment``."""


@dataclass(frozen=True)
class PreparedJob:
    """A command job checked and resolved, ready to be inserted."""

    name: str
    display_name: str
    spec: dict[str, Any]
    tags: dict[str, str]
    compute: str
    priority: int
    cpus: float
    memory_mb: int
    gpus: int
    instance_count: int
    timeout_s: int | None
    code_digest: str | None


@dataclass(frozen=True)
class LocalCapacity:
    """What the ``local`` compute has: a job asking for more can never start, so it is
    refused at submit."""

    cpus: float
    memory_mb: int
    gpus: int
    cost_per_core_hour: float = 0.0


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    next_offset: int
    status: str
    complete: bool  # the job has ended and every byte has been read


#: Reads a job's log from an offset: the launcher's live file while it runs, the stored
#: artifact once it has ended (``services.job_logs``).
LogReader = Callable[[WorkspaceRow, JobRow, JobSubmissionRow, int], bytes]


class JobService:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        io: IoResolver,
        secrets: SecretService,
        environments: EnvironmentPinner,
        local: LocalCapacity,
        *,
        wake: Callable[[], None] = lambda: None,
        read_log: LogReader | None = None,
    ) -> None:
        self.db = db
        self.authorizer = authorizer
        self.io = io
        self.secrets = secrets
        self.environments = environments
        self.local = local
        self.wake = wake
        self.read_log = read_log

    # -- submit -----------------------------------------------------------------------------

    def create(self, principal: Principal, workspace: str, body: CommandJobCreate) -> JobRead:
        prepared = self.prepare(principal, workspace, body, name=body.name or _new_name())
        # As submitted, so a schedule can submit it again (create_job: azureml:<name>).
        prepared.spec["submitted"] = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        try:
            with self.db.write() as session:
                ws = workspace_row(session, workspace)
                experiment = get_or_create(session, ws.id, prepared.spec["experiment_name"])
                submission = self.insert(session, ws, experiment.id, principal, prepared)
                read = self._read(session, ws, submission)
        except IntegrityError as exc:
            raise name_taken(prepared.name) from exc
        self.wake()
        return read

    def prepare(
        self,
        principal: Principal,
        workspace: str,
        body: CommandJobCreate,
        *,
        name: str,
        environment: dict[str, Any] | None = None,
        deferred: dict[str, dict[str, Any]] | None = None,
        field: str = "",
    ) -> PreparedJob:
        """Check and resolve everything a command job needs, outside any transaction (it
        reads storage and the environment registry). A pipeline step passes its component's
        already pinned ``environment``, and the inputs it will take from upstream steps as
        ``deferred`` (their URIs are known only once those steps are done); errors then name
        fields under ``field`` (``jobs.<step>.``)."""
        later = deferred or {}
        try:
            command_template.check(body.command, {**body.inputs, **later}, body.outputs)
            inputs = self.io.inputs(workspace, body.inputs)
            outputs = self.io.outputs(workspace, name, body.outputs)
            # Render once now, with placeholders, so a bad command fails at submit.
            placeholders = {
                k: v.get("value") if v["kind"] == "literal" else "x" for k, v in inputs.items()
            }
            command_template.render(
                body.command,
                {**placeholders, **dict.fromkeys(later, "x")},
                dict.fromkeys(outputs, "x"),
            )
            pinned = environment or self.environments.pin(
                principal, workspace, body.environment or DEFAULT_ENVIRONMENT
            )
            self._check_secrets(principal, workspace, body.environment_variables)
            with self.db.read() as session:
                ws = workspace_row(session, workspace)
                compute = _compute_name(body.compute)
                self._check_compute(session, ws, compute, body)
                code_digest = self._check_code(session, ws, body.code)
        except ShipyardError as exc:
            if field:
                exc.field = field + (exc.field or "")
            raise
        cpus, memory_mb, gpus = self._resources(body)
        spec: dict[str, Any] = {
            "command": body.command,
            "code": body.code,
            "environment": pinned,
            "environment_variables": body.environment_variables,
            "inputs": {**inputs, **later},
            "outputs": outputs,
            "resources": body.resources.model_dump(exclude_none=True),
            "limits": body.limits.model_dump(exclude_none=True),
            "description": body.description,
            "properties": body.properties,
            "experiment_name": body.experiment_name or DEFAULT_EXPERIMENT,
            "extra": {
                k: v
                for k, v in {
                    "identity": body.identity,
                    "services": body.services,
                    "distribution": body.distribution,
                }.items()
                if v is not None
            },
        }
        return PreparedJob(
            name=name,
            display_name=body.display_name or name,
            spec=spec,
            tags=dict(body.tags),
            compute=compute,
            priority=PRIORITIES[body.queue_settings.priority],
            cpus=cpus,
            memory_mb=memory_mb,
            gpus=gpus,
            instance_count=body.resources.instance_count,
            timeout_s=body.limits.timeout,
            code_digest=code_digest,
        )

    def insert(
        self,
        session: Session,
        ws: WorkspaceRow,
        experiment_id: str,
        principal: Principal,
        prepared: PreparedJob,
        *,
        parent_id: str | None = None,
        job_type: str = "command",
        state: str = "queued",
        step: str | None = None,
    ) -> JobSubmissionRow:
        """The job's rows, in the caller's transaction: queued (or, for a pipeline step,
        ``waiting`` for its upstream steps; for a pipeline, ``pipeline``)."""
        now = utcnow()
        job_id = new_id()
        status = "Queued" if state == "queued" else "NotStarted"
        history = [("NotStarted", now.isoformat())]
        if status == "Queued":
            history.append(("Queued", now.isoformat()))
        tracking_store.insert_job(
            session,
            {
                "id": job_id,
                "workspace_id": ws.id,
                "experiment_id": experiment_id,
                "name": prepared.display_name,
                "job_type": job_type,
                "status": status,
                "parent_id": parent_id,
                "created_by": principal.id,
                "lifecycle_stage": "active",
                "start_time": now,
                "end_time": None,
                "status_history": history,
            },
        )
        tracking_store.insert_tags(session, job_id, prepared.tags)
        submission = JobSubmissionRow(
            job_id=job_id,
            workspace_id=ws.id,
            name=prepared.name,
            spec=prepared.spec,
            compute=prepared.compute,
            state=state,
            priority=prepared.priority,
            cpus=prepared.cpus,
            memory_mb=prepared.memory_mb,
            gpus=prepared.gpus,
            instance_count=prepared.instance_count,
            timeout_s=prepared.timeout_s,
            queued_at=now,
            code_digest=prepared.code_digest,
            created_by=principal.id,
            step=step,
        )
        session.add(submission)
        session.flush()
        used = _used(
            prepared.spec.get("inputs", {}),
            prepared.spec.get("environment") or {},
            prepared.code_digest,
        )
        session.add_all(lineage.job_assets(job_id, ws.id, "input", used))
        return submission

    def _resources(self, body: CommandJobCreate) -> tuple[float, int, int]:
        resources = body.resources
        cpus = resources.cpu if resources.cpu is not None else 1.0
        memory_mb = _memory_mb(resources.memory)
        gpus = resources.gpu or 0
        return cpus, memory_mb, gpus

    def _check_compute(
        self, session: Session, ws: WorkspaceRow, compute: str, body: CommandJobCreate
    ) -> None:
        if compute == LOCAL_COMPUTE:
            cpus, memory_mb, gpus = self._resources(body)
            local = self.local
            too_big = [
                f"{what} {asked} > {has}"
                for what, asked, has in (
                    ("cpu", cpus, local.cpus),
                    ("memory (MB)", memory_mb, local.memory_mb),
                    ("gpu", gpus, local.gpus),
                )
                if asked > has
            ]
            if too_big:
                raise InvalidInputError(
                    "the job asks for more than the local compute has: " + ", ".join(too_big),
                    code="exceeds_compute",
                    field="resources",
                )
            if body.resources.instance_count > 1:
                raise InvalidInputError(
                    "local compute runs one instance; use a Ray compute for instance_count > 1",
                    code="exceeds_compute",
                    field="resources.instance_count",
                )
            return
        row = get_compute(session, ws.id, compute)
        if row is None:
            raise NotFoundError(
                f"compute {compute!r} does not exist in this workspace",
                code="compute_not_found",
                field="compute",
            )
        if row.type != "ray":
            raise InvalidInputError(
                f"compute {compute!r} is of type {row.type!r}, which cannot run jobs here",
                code="compute_unavailable",
                field="compute",
            )
        # A Ray cluster queues what it cannot place yet and may grow (its autoscaler): any
        # size is accepted; resources.cpu (1 by default) is asked per instance.

    def _check_code(self, session: Session, ws: WorkspaceRow, code: str | None) -> str | None:
        if code is None:
            return None
        digest = code.removeprefix("sha256:")
        if not code.startswith("sha256:") or not is_digest(digest):
            raise InvalidInputError(
                "code must be 'sha256:<digest>' of an uploaded code snapshot; the CLI and SDK "
                "upload a local folder and fill this in",
                code="invalid_code",
                field="code",
            )
        upload = get_upload(session, ws.id, "code", digest)
        if upload is None or upload.committed_at is None:
            raise NotFoundError(
                "the code snapshot has not been uploaded to this workspace",
                code="code_not_found",
                field="code",
            )
        return digest

    def _check_secrets(
        self, principal: Principal, workspace: str, variables: dict[str, str]
    ) -> None:
        check_secret_references(self.authorizer, self.secrets, principal, workspace, variables)

    # -- read -------------------------------------------------------------------------------

    def get(self, workspace: str, name: str) -> JobRead:
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            sub = _require(session, ws, name)
            read = self._read(session, ws, sub)
            read.lineage = lineage.direct(session, sub.job_id)
            return read

    def list(
        self,
        workspace: str,
        *,
        parent_job_name: str | None = None,
        status: str | None = None,
        page_token: str | None,
        max_results: int,
    ) -> Page[JobRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            query = (
                select(JobSubmissionRow)
                .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
                .where(JobSubmissionRow.workspace_id == ws.id, JobRow.lifecycle_stage == "active")
                .order_by(JobSubmissionRow.name)
                .limit(max_results + 1)
            )
            if after is not None:
                query = query.where(JobSubmissionRow.name > after)
            if status is not None:
                query = query.where(JobRow.status == status)
            if parent_job_name is not None:
                parent = _require(session, ws, parent_job_name)
                query = query.where(JobRow.parent_id == parent.job_id)
            rows, token = split_page(list(session.scalars(query)), max_results, lambda r: r.name)
            return Page(items=[self._read(session, ws, r) for r in rows], next_page_token=token)

    def _read(self, session: Session, ws: WorkspaceRow, sub: JobSubmissionRow) -> JobRead:
        job = session.get(JobRow, sub.job_id)
        assert job is not None  # the submission row cascades with its job
        experiment = session.get(ExperimentRow, job.experiment_id)
        user = session.get(UserRow, sub.created_by)
        parent = job_store.get_submission_by_job(session, job.parent_id) if job.parent_id else None
        tags = dict(
            session.execute(
                select(tracking_store.JobTagRow.key, tracking_store.JobTagRow.value).where(
                    tracking_store.JobTagRow.job_id == job.id
                )
            ).all()
        )
        return job_read(
            job,
            sub,
            experiment=experiment.name if experiment else "",
            created_by=user.name if user else sub.created_by,
            tags=tags,
            rate=self._rate(session, ws, sub.compute),
            parent=parent.name if parent else None,
        )

    def _rate(self, session: Session, ws: WorkspaceRow, compute: str) -> tuple[float, str]:
        if compute == LOCAL_COMPUTE:
            return self.local.cost_per_core_hour, "core"
        row = get_compute(session, ws.id, compute)
        return (row.cost_rate, row.cost_unit) if row else (0.0, "core")

    # -- files ------------------------------------------------------------------------------

    def output_location(self, workspace: str, name: str, output: str) -> Location:
        """Where a job's output is: ``artifacts`` (what the job wrote under ./outputs and
        ./logs, its logs, what it logged with MLflow) or a named output."""
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            sub = _require(session, ws, name)
            if output == ARTIFACTS_OUTPUT:
                uri = datastore_uri(DEFAULT_DATASTORE, f"runs/{sub.job_id}/artifacts")
            else:
                found = sub.spec.get("outputs", {}).get(output)
                if found is None:
                    raise NotFoundError(
                        f"job {name!r} has no output {output[:100]!r}",
                        code="output_not_found",
                        field="output",
                    )
                uri = str(found["uri"])
            return self.io.location(session, ws, uri, field="output")

    def code_location(self, workspace: str, name: str) -> Location:
        """The job's code snapshot (the folder it ran in, as submitted)."""
        with self.db.read() as session:
            ws = workspace_row(session, workspace)
            sub = _require(session, ws, name)
            if sub.code_digest is None:
                raise NotFoundError(
                    f"job {name!r} was submitted without code", code="code_not_found", field="name"
                )
            uri = datastore_uri(DEFAULT_DATASTORE, f"{UPLOADS_FOLDER}/{sub.code_digest}")
            return self.io.location(session, ws, uri, field="code")

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, workspace: str, name: str) -> JobRead:
        """Ask the job to stop: a queued job is canceled at once, a running one is signalled
        by the runner (CancelRequested, then Canceled when it has stopped)."""
        with self.db.write() as session:
            ws = workspace_row(session, workspace)
            sub = _require(session, ws, name)
            job = session.get(JobRow, sub.job_id)
            assert job is not None
            if job.status in TERMINAL or job.status == "CancelRequested":
                return self._read(session, ws, sub)
            if sub.state in ("queued", "waiting"):  # nothing runs yet: canceled at once
                set_status(job, "Canceled")
                sub.state = "done"
                sub.ended_at = utcnow()
            else:
                set_status(job, "CancelRequested")
            session.flush()
            read = self._read(session, ws, sub)
        self.wake()
        return read

    def set_archived(self, workspace: str, name: str, archived: bool) -> None:
        """Hide a job from lists (it is kept: ``show`` still finds it) or bring it back."""
        with self.db.write() as session:
            ws = workspace_row(session, workspace)
            job = session.get(JobRow, _require(session, ws, name).job_id)
            assert job is not None
            job.lifecycle_stage = "deleted" if archived else "active"

    # -- logs -------------------------------------------------------------------------------

    def logs(self, workspace: str, name: str, offset: int, *, wait: float = 0.0) -> LogChunk:
        """Log bytes from ``offset``; with ``wait``, block up to that many seconds for more
        (or for the job to end) when there is nothing new."""
        deadline = time.monotonic() + wait
        while True:
            with self.db.read() as session:
                ws = workspace_row(session, workspace)
                sub = _require(session, ws, name)
                job = session.get(JobRow, sub.job_id)
                assert job is not None
                ended = job.status in TERMINAL and sub.state == "done"
                data = self.read_log(ws, job, sub, offset) if self.read_log else b""
                status = job.status
            if data or ended or time.monotonic() >= deadline:
                return LogChunk(data, offset + len(data), status, complete=ended and not data)
            time.sleep(0.1)


# -- shared with the runner -------------------------------------------------------------------


def set_status(job: JobRow, status: str, when: datetime | None = None) -> None:
    """Move a job to ``status`` and record when (ends set end_time)."""
    now = when or utcnow()
    job.status = status
    job.status_history = [*job.status_history, (status, now.isoformat())]
    if status in TERMINAL:
        job.end_time = now


def _used(
    inputs: dict[str, dict[str, Any]], environment: dict[str, Any], code_digest: str | None
) -> list[lineage.AssetKey]:
    """The asset versions a job uses, for lineage."""
    used = []
    for value in inputs.values():
        if value.get("asset"):
            name, version = str(value["asset"]).rsplit(":", 1)
            kind = "model" if value["type"] in MODEL_TYPES else "data"
            used.append(lineage.AssetKey(kind, name, version))
    if environment.get("name") and environment.get("version"):
        used.append(
            lineage.AssetKey("environment", environment["name"], str(environment["version"]))
        )
    if code_digest is not None:
        used.append(lineage.AssetKey("code", code_digest, ""))
    return used


def name_taken(name: str) -> ConflictError:
    return ConflictError(
        f"a job named {name!r} already exists in this workspace", code="job_exists", field="name"
    )


def _new_name() -> str:
    """Azure-like job names: readable, unique enough, safe in URLs and paths."""
    return "job_" + "".join(random.choice(_NAME_ALPHABET) for _ in range(12))


def _compute_name(compute: str | None) -> str:
    if compute is None:
        return LOCAL_COMPUTE
    name = compute
    for prefix in ("azureml:", "shipyard:"):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
    if name in ("serverless", ""):
        return LOCAL_COMPUTE
    return name


def _memory_mb(value: str | int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        if value < 0:
            raise InvalidInputError("memory cannot be negative", field="resources.memory")
        return value
    found = _MEMORY.match(value)
    if found is None:
        raise InvalidInputError(
            f"{value!r} is not a memory size: use megabytes or a size such as '512m' or '4g'",
            code="invalid_memory",
            field="resources.memory",
        )
    number = float(found.group(1))
    factor = {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    unit = found.group(2).lower()
    # A bare number in a string means megabytes, like an integer.
    return int(number * (factor[unit] if unit else 1))


def _require(session: Session, ws: WorkspaceRow, name: str) -> JobSubmissionRow:
    sub = job_store.get_submission(session, ws.id, name)
    if sub is None:
        shown = name if len(name) <= 100 else name[:97] + "..."
        raise NotFoundError(f"job {shown!r} does not exist", code="job_not_found", field="name")
    return sub
