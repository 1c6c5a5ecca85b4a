"""Where a job's log is read from: the live file on the host that runs it, then the stored
``user_logs/std_log.txt`` artifact once the job has been finalized."""

from __future__ import annotations

import re
from pathlib import Path

from shipyard.domain.errors import NotFoundError
from shipyard.services.artifacts import ArtifactService
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import JobRow
from shipyard.store.workspaces import WorkspaceRow

USER_LOG = "user_logs/std_log.txt"
MAX_CHUNK = 1 << 20  # one answer carries at most this much; the client asks again
# What a failed job's error quotes from its log: the last line that names an error, such as
# a Python exception ("ValueError: ...") or a tool's "error: ..." / "... failed: ...".
_ERROR_LINE = re.compile(
    r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b|(?i:\b(?:error|failed):)"
)
_TAIL_BYTES = 64 * 1024
_MAX_QUOTE = 500


def last_error_line(log_file: Path) -> str | None:
    """The last line of the log's tail that names an error (cut to a readable length), or
    None: a failed job's error says why without opening the log. The log is already masked
    (secrets never reach it), so quoting it leaks nothing new."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - _TAIL_BYTES))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        line = line.strip()
        if _ERROR_LINE.search(line):
            return line if len(line) <= _MAX_QUOTE else line[: _MAX_QUOTE - 1] + "…"
    return None


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
