"""Preparing a claimed job to start: its folder, code snapshot, environment, inputs, the
rendered command and the variables it runs with, and (with ``local_compute_uids``) its user.

The runner (``job_runner.py``) calls ``prepare`` on a worker thread and then starts what it
returns on the job's compute; everything here happens before a process exists, so a failure
leaves only the job's folder behind (the runner ends or retries the job).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from shipyard.compute import job_users
from shipyard.compute.environments import BuiltEnvironment
from shipyard.compute.job_users import JobUsers
from shipyard.compute.launchers.ray import RayJob
from shipyard.domain import command_template
from shipyard.domain.content import UPLOADS_FOLDER
from shipyard.domain.errors import ShipyardError
from shipyard.services import job_files
from shipyard.services.datastore_uris import DatastoreResolver
from shipyard.services.job_environment import JobContext, job_environment, mint_job_token
from shipyard.services.job_outputs import SYSTEM_LOG, JobOutputs
from shipyard.services.secrets import SecretService
from shipyard.store.computes import get_compute
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import ExperimentRow, JobRow
from shipyard.store.workspaces import WorkspaceRow


class EnvironmentProvider(Protocol):
    def prepare(self, pinned: dict[str, Any], log: Callable[[str], None]) -> BuiltEnvironment:
        """Build (or find built, or for an image, find or pull) the pinned environment."""

    def hold(self, pinned: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
        """Keep the built environment from being evicted while a job runs in it."""


@dataclass
class PreparedJob:
    """A job ready to start: what to run, where, with which variables."""

    job_id: str
    name: str
    workspace: str
    job_dir: Path
    command: str
    env: dict[str, str]
    masked: list[str]  # secret values to hide in its log
    ray_job: RayJob | None  # None: the local compute
    image: str | None  # an image environment: run in a container
    uid: int | None  # the job's own user id, with local_compute_uids
    cpus: float
    memory_mb: int
    devices: list[int]
    note: Callable[[str], None]  # a line to the job's system log

    @property
    def wd(self) -> Path:
        return self.job_dir / "wd"


class JobPreparer:
    def __init__(
        self,
        db: Database,
        *,
        server_url: str,
        gpus: int,
        ray_available: bool,
        environments: EnvironmentProvider,
        resolver: DatastoreResolver,
        outputs: JobOutputs,
        secrets: SecretService,
        users: JobUsers | None,
    ) -> None:
        self.db = db
        self.server_url = server_url
        self.gpus = gpus
        self.ray_available = ray_available
        self.environments = environments
        self.resolver = resolver
        self.outputs = outputs
        self.secrets = secrets
        self.users = users

    def prepare(self, job_id: str, job_dir: Path, held: contextlib.ExitStack) -> PreparedJob:
        """Everything up to starting the process. What must last while the job runs (its
        environment, its user id) is entered into ``held``."""
        with self.db.read() as session:
            sub = session.get(JobSubmissionRow, job_id)
            job = session.get(JobRow, job_id)
            assert sub is not None
            assert job is not None
            ws = session.get(WorkspaceRow, sub.workspace_id)
            experiment = session.get(ExperimentRow, job.experiment_id)
            assert ws is not None
            assert experiment is not None
            spec = dict(sub.spec)
            name, attempt, devices = sub.name, sub.attempt, list(sub.devices)
            cpus, memory_mb = sub.cpus, sub.memory_mb
            ray_job = self._ray_job(session, sub)
        if job_dir.exists():
            shutil.rmtree(job_dir, ignore_errors=True)
        wd = job_dir / "wd"
        for folder in (wd, job_dir / "user_logs", job_dir / "system_logs", job_dir / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        system_log = job_dir / SYSTEM_LOG

        def note(line: str) -> None:
            append(system_log, line if line.endswith("\n") else line + "\n")

        note(f"job {name} (attempt {attempt + 1}) preparing on {os.uname().nodename}")
        if spec.get("code"):
            digest = str(spec["code"]).removeprefix("sha256:")
            with self.db.read() as session:
                found = session.get(WorkspaceRow, ws.id)
                assert found is not None
                location = self.resolver.default(found, f"{UPLOADS_FOLDER}/{digest}")
            job_files.fetch(location, wd)
            note(f"code snapshot {digest[:12]} ready")
        built = self.environments.prepare(spec["environment"], note)
        held.enter_context(self.environments.hold(spec["environment"]))
        if built.image is not None and ray_job is not None:
            raise ShipyardError(
                "image environments run on the local compute only (a Ray cluster runs its "
                "own Python)",
                code="image_unsupported",
            )
        image = built.image
        note(f"environment {spec['environment'].get('ref') or 'inline'} ready")
        # A job that runs as its own user, or in a container, cannot follow a link into
        # storage: it gets its inputs as read-only hard links (or copies) instead.
        isolated = (self.users is not None and ray_job is None) or image is not None
        input_values = self._inputs(ws.id, spec.get("inputs", {}), job_dir, note, isolated)
        output_paths: dict[str, str] = {}
        for out_name in spec.get("outputs", {}):
            folder = job_dir / "outputs" / out_name
            folder.mkdir(parents=True, exist_ok=True)
            output_paths[out_name] = str(folder)
        (wd / "outputs").mkdir(exist_ok=True)
        (wd / "logs").mkdir(exist_ok=True)
        command = command_template.render(spec["command"], input_values, output_paths)
        context = JobContext(
            job_id, name, ws.name, ws.id, job.created_by, experiment.id, experiment.name
        )
        env, masked = self._environment(spec, context, None if image else built.bin_dir, job_dir)
        if self.gpus and ray_job is None:
            # Only the devices this job holds; none at all for a job that asked for none.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
        uid: int | None = None
        if self.users is not None and ray_job is None:
            uid = self.users.take(job_id)
            held.callback(self.users.release, uid)  # its leftovers killed, then freed
            job_dir.chmod(0o711)  # the job may enter, not list
            for own in (wd, job_dir / "tmp", *(job_dir / "outputs" / o for o in output_paths)):
                job_users.give(own, uid)
            note(f"running as user id {uid}")
        return PreparedJob(
            job_id,
            name,
            ws.name,
            job_dir,
            command,
            env,
            masked,
            ray_job,
            image,
            uid,
            cpus,
            memory_mb,
            devices if ray_job is None and self.gpus else [],
            note,
        )

    def _ray_job(self, session: Session, sub: JobSubmissionRow) -> RayJob | None:
        """What to ask the Ray cluster for, when the job's compute is one (None: local)."""
        if sub.compute == "local":
            return None
        compute = get_compute(session, sub.workspace_id, sub.compute)
        if compute is None or compute.type != "ray" or not compute.address:
            raise ShipyardError(
                f"compute {sub.compute!r} no longer exists in this workspace",
                code="compute_not_found",
                field="compute",
            )
        if not self.ray_available:
            raise ShipyardError(
                "this server does not run jobs on Ray clusters", code="compute_unavailable"
            )
        return RayJob(
            address=compute.address,
            submission_id=f"shipyard-{sub.job_id}-{sub.attempt}",
            cpus=sub.cpus,
            gpus=sub.gpus,
            memory_mb=sub.memory_mb,
            instance_count=sub.instance_count,
        )

    def _inputs(
        self,
        workspace_id: str,
        inputs: dict[str, dict[str, Any]],
        job_dir: Path,
        note: Callable[[str], None],
        isolated: bool,
    ) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for name, value in inputs.items():
            if value["kind"] == "literal":
                values[name] = value["value"]
                continue
            uri = str(value["uri"])
            if value["mode"] == "direct" or not uri.startswith("azureml://"):
                values[name] = uri
                continue
            location = self.outputs.location(workspace_id, uri, f"inputs.{name}")
            dest = job_dir / "inputs" / name
            if value["mode"] == "ro_mount" and isolated:
                path = job_files.hard_link(location, dest)
            elif value["mode"] == "ro_mount":
                path = job_files.link(location, dest)
            else:
                path = job_files.fetch(location, dest)
            values[name] = str(path)
            note(f"input {name}: {uri} ({value['mode']}) -> {path}")
        return values

    def _environment(
        self, spec: dict[str, Any], job: JobContext, bin_dir: Path | None, job_dir: Path
    ) -> tuple[dict[str, str], list[str]]:
        token = mint_job_token(
            self.db, job, timeout_s=int(spec.get("limits", {}).get("timeout") or 0)
        )
        return job_environment(
            spec,
            job,
            bin_dir=bin_dir,
            job_dir=job_dir,
            server_url=self.server_url,
            token=token,
            reveal=lambda name: self.secrets.reveal(job.workspace, name).value,
        )


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(text)
