"""Job users: each local job as its own unprivileged user id, so a job cannot read the
server's data folder (master key, database, storage), another job's files or another job's
process environment (where its token sits).

With ``local_compute_uids`` set (a range such as ``61000-61099``; the ids need no account),
the server, which must run as root for it, takes a free id from the range for each local job
and runs the job's command as that user and group with no other groups. The job's working,
temporary and output folders are its own; everything else it is given (inputs, the code
snapshot's parent, the environment) it can read but not change. When the job ends, every
process still running as that id is killed before the id is handed out again, so nothing a
job leaves behind meets the next one.

Online deployment instances run the same way: each instance process as an id of this pool
(``serving/process.py``), freed and reaped when that process ends.

The data folder is made private except for the path to the job folders, the deployments'
work folder and the environment cache: ``harden`` below.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

import psutil

from shipyard.domain.errors import InvalidInputError, ShipyardError


def parse_uid_range(text: str, *, field: str = "local_compute_uids") -> range:
    """``"61000-61099"`` as the ids it holds; a clear error for anything else."""
    first, dash, last = text.strip().partition("-")
    try:
        low, high = int(first), int(last if dash else first)
    except ValueError:
        raise InvalidInputError(
            f"{field} must be a range of user ids such as 61000-61099, not {text!r}", field=field
        ) from None
    if low < 1000 or high < low or high > 2**31 - 2:
        raise InvalidInputError(
            f"{field} must be a range of unprivileged user ids (1000 and above, first <= last), "
            f"not {text!r}",
            field=field,
        )
    return range(low, high + 1)


class NoFreeJobUserError(ShipyardError):
    pass


class JobUsers:
    """The pool of ids, one per running local job."""

    def __init__(self, uids: range) -> None:
        self.uids = uids
        self._taken: dict[int, str] = {}  # uid -> job id
        self._lock = threading.Lock()

    def take(self, job_id: str) -> int:
        with self._lock:
            uid = next((u for u in self.uids if u not in self._taken), None)
            if uid is not None:
                self._taken[uid] = job_id
        if uid is not None:
            # A free id runs nothing, unless a server that was killed left something behind
            # (a daemon of an instance's init()): it must not meet the id's next holder.
            # Re-attached jobs are adopted before anything is taken.
            reap(uid)
            return uid
        raise NoFreeJobUserError(
            f"every job user id in {self.uids.start}-{self.uids.stop - 1} is in use; "
            "widen local_compute_uids",
            code="no_free_job_user",
        )

    def adopt(self, uid: int, job_id: str) -> None:
        """A job a restarted server re-attached to keeps its id."""
        with self._lock:
            self._taken[uid] = job_id

    def release(self, uid: int) -> None:
        """Kill whatever still runs as ``uid``, then free it."""
        reap(uid)
        with self._lock:
            self._taken.pop(uid, None)


def reap(uid: int) -> None:
    for process in psutil.process_iter(["uids"]):
        uids = process.info["uids"]
        if uids is not None and uid in (uids.real, uids.effective):
            with contextlib.suppress(psutil.Error):
                process.kill()


def give(path: Path, uid: int) -> None:
    """``path`` and everything under it to the job's user (links are not followed)."""
    os.chown(path, uid, uid, follow_symlinks=False)
    for top, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(top, name), uid, uid, follow_symlinks=False)


def harden(data_dir: Path, shared: list[Path]) -> None:
    """Make the data folder private to the server, except that job users may pass through it
    to the folders in ``shared`` (the jobs folder, the deployments' work folder, the
    environment cache): the data folder and those folders are ``0711`` (enter, not list),
    every other entry ``0700``/``0600``."""
    data_dir.chmod(0o711)
    keep = {p.resolve() for p in shared}
    for entry in data_dir.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if entry.resolve() in keep:
            entry.chmod(0o711)
        elif stat.S_ISDIR(mode):
            entry.chmod(0o700)
        else:
            entry.chmod(0o600)


def reachable_by_all(path: Path) -> bool:
    """Whether any user may run ``path``: every folder on the way may be entered by others
    and the file is executable by others (links resolved)."""
    real = path.resolve()
    try:
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)
    except OSError:
        return False


def set_up(
    uid_range: str,
    data_dir: Path,
    jobs_dir: Path,
    environments_dir: Path,
    *,
    private: list[Path],
    reachable: Sequence[Path] = (),
) -> JobUsers:
    """The pool for ``local_compute_uids``, once the server may use it: running as root,
    the data folder private, the job and environment folders (and ``reachable``: the
    deployments' work folder) reachable by job users. ``private`` are folders the server
    makes later (local artifact storage): made now, so they are made private with the rest."""
    uids = parse_uid_range(uid_range)
    if os.geteuid() != 0:
        raise InvalidInputError(
            "local_compute_uids needs the server to run as root (to start jobs as other "
            "users); unset it, or start the server as root",
            field="local_compute_uids",
        )
    shared = [jobs_dir, environments_dir, *reachable]
    for folder in (*shared, *private):
        folder.mkdir(parents=True, exist_ok=True)
    harden(data_dir, shared)
    environments_dir.chmod(environments_dir.stat().st_mode | 0o011)
    for folder in shared:
        if not reachable_by_all(folder):
            raise InvalidInputError(
                f"local_compute_uids: job users cannot reach {folder}: a folder above it "
                "may not be entered by other users (move data_dir or environment_cache_dir "
                "out of a private folder such as /root)",
                field="local_compute_uids",
            )
    return JobUsers(uids)
