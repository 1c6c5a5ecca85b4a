"""Where a job's log is read from: the live file on the host that runs it, then the stored
``user_logs/std_log.txt`` artifact once the job has been finalized."""

from __future__ import annotations

from pathlib import Path

from shipyard.domain.errors import NotFoundError
from shipyard.services.artifacts import ArtifactService
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import JobRow
from shipyard.store.workspaces import WorkspaceRow

USER_LOG = "user_logs/std_log.txt"
MAX_CHUNK = 1 << 20  # one answer carries at most this much; the client asks again


class JobLogs:
    def __init__(self, jobs_dir: Path, artifacts: ArtifactService) -> None:
        self.jobs_dir = jobs_dir
        self.artifacts = artifacts

    def read(
        self, workspace: WorkspaceRow, job: JobRow, sub: JobSubmissionRow, offset: int
    ) -> bytes:
        live = self.jobs_dir / job.id / USER_LOG
        if sub.state != "done" and live.is_file():
            with open(live, "rb") as handle:
                handle.seek(offset)
                return handle.read(MAX_CHUNK)
        if sub.state != "done":
            return b""  # queued or preparing: nothing written yet
        root = self.artifacts.run_root(workspace.name, job.id)
        try:
            chunks = root.storage.read(root.path(USER_LOG), start=offset, end=offset + MAX_CHUNK)
            return b"".join(chunks)
        except NotFoundError:
            return b""
