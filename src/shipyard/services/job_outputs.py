"""What a finished job leaves: its files stored, its outputs registered, its logs kept.

The job's own ``./outputs`` and ``./logs`` become its ``artifacts`` (the run's artifact
folder), each named output goes to its datastore path (an empty one still exists there, so
the next pipeline step can take it), outputs with a ``name`` are registered as data or model
versions, and ``user_logs/std_log.txt`` and ``system_logs/prepare.txt`` are stored with the
run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shipyard.domain.asset_uris import DatastorePath, parse_asset_path
from shipyard.domain.errors import ShipyardError
from shipyard.domain.principals import Principal
from shipyard.schemas.data import DataVersionCreate
from shipyard.schemas.models import ModelAssetCreate
from shipyard.services import job_files
from shipyard.services.artifacts import ArtifactService
from shipyard.services.data import DataService
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.job_inputs import MODEL_TYPES
from shipyard.services.model_assets import ModelAssetService
from shipyard.storage.base import write_all
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)

USER_LOG = "user_logs/std_log.txt"
SYSTEM_LOG = "system_logs/prepare.txt"


class JobOutputs:
    def __init__(
        self,
        db: Database,
        resolver: DatastoreResolver,
        artifacts: ArtifactService,
        data: DataService,
        models: ModelAssetService,
        jobs_dir: Path,
    ) -> None:
        self.db = db
        self.resolver = resolver
        self.artifacts = artifacts
        self.data = data
        self.models = models
        self.jobs_dir = jobs_dir

    def location(self, workspace_id: str, uri: str, field: str) -> Location:
        """The place a datastore URI stored with a job names."""
        parsed = parse_asset_path(uri, field=field)
        assert isinstance(parsed, DatastorePath)
        with self.db.read() as session:
            ws = session.get(WorkspaceRow, workspace_id)
            assert ws is not None
            return self.resolver.resolve(session, ws, parsed.datastore, parsed.path, field=field)

    def store(
        self,
        workspace: str,
        workspace_id: str,
        job_id: str,
        spec: dict[str, Any],
        principal: Principal,
        *,
        completed: bool,
    ) -> tuple[dict[str, str], list[str]]:
        """Store the job's artifacts, and for a completed job its named outputs (registering
        those with a name). Returns what was registered (output -> ``name:version``) and the
        problems met (which fail a job that otherwise completed)."""
        job_dir = self.jobs_dir / job_id
        problems: list[str] = []
        try:
            root = self.artifacts.run_root(workspace, job_id, writing=True)
            job_files.upload_folder(job_dir / "wd" / "outputs", root.storage, root.path("outputs"))
            job_files.upload_folder(job_dir / "wd" / "logs", root.storage, root.path("logs"))
        except ShipyardError as exc:
            problems.append(f"artifacts: {exc.detail}")
        registered: dict[str, str] = {}
        if not completed:
            return registered, problems
        for name, output in spec.get("outputs", {}).items():
            try:
                location = self.location(workspace_id, output["uri"], f"outputs.{name}")
                job_files.upload_folder(job_dir / "outputs" / name, location.storage, location.key)
                # An output left empty is still there: the next step may take it.
                location.storage.ensure_folder(location.key)
                if output.get("name"):
                    registered[name] = self._register(workspace, principal, output, job_id)
            except ShipyardError as exc:
                problems.append(f"output {name}: {exc.detail}")
        return registered, problems

    def _register(
        self, workspace: str, principal: Principal, output: dict[str, Any], job_id: str
    ) -> str:
        description = output.get("description")
        if output["type"] in MODEL_TYPES:
            model = self.models.create(
                principal,
                workspace,
                output["name"],
                ModelAssetCreate(
                    version=output.get("version"),
                    path=output["uri"],
                    type=output["type"],
                    description=description,
                    properties={"shipyard.job_id": job_id},
                ),
            )
            return f"{model.name}:{model.version}"
        data = self.data.create(
            principal,
            workspace,
            output["name"],
            DataVersionCreate(
                version=output.get("version"),
                type=output["type"],
                path=output["uri"],
                description=description,
                properties={"shipyard.job_id": job_id},
            ),
        )
        return f"{data.name}:{data.version}"

    def store_logs(self, job_id: str) -> None:
        """The job's output and preparation logs, kept with its run."""
        job_dir = self.jobs_dir / job_id
        with self.db.read() as session:
            row = session.get(JobSubmissionRow, job_id)
            ws = session.get(WorkspaceRow, row.workspace_id) if row else None
            workspace = ws.name if ws else None
        if workspace is None:
            return
        try:
            root = self.artifacts.run_root(workspace, job_id, writing=True)
            for relative in (USER_LOG, SYSTEM_LOG):
                path = job_dir / relative
                if path.is_file():
                    with open(path, "rb") as handle:
                        chunks = iter(lambda: handle.read(1 << 20), b"")
                        write_all(root.storage, root.path(relative), chunks)
        except ShipyardError:
            log.warning("could not store a job's logs", extra={"job_id": job_id})
