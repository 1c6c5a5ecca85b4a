"""One instance process: its config, environment and log, how it is started and stopped.

The process runs ``scoring_server.py`` by path under the deployment's own interpreter, in a
new session (so it and whatever ``init()`` starts form one process group to signal), with
nothing of the server's environment (it may hold keys): only where it is, the user's
variables and ``PYTHONUNBUFFERED`` so its log is live. It watches the server's pid and stops
when the server is gone, so a killed server leaves no instances holding ports. With a pool of
job users it runs as one of them (see ``InstanceProcess``), its log written by the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shipyard.serving.spec import DeploymentSpec, UserPool

SCORING_SERVER = Path(__file__).with_name("scoring_server.py")
INIT_FAILED_EXIT = 3  # scoring_server.py's exit status when init() raised
MASK = b"***"
#: The most of a status file read: an init() traceback, with room to spare.
MAX_STATUS_BYTES = 1024 * 1024


class NoUserError(Exception):
    """The pool had no user id to run the instance as: the text says why."""


@dataclass(frozen=True)
class Status:
    """What an instance wrote to its status file: ``starting``, ``ready`` or ``failed``."""

    state: str
    port: int | None
    error: str | None


class InstanceProcess:
    """A started instance process, and the files that belong to it."""

    def __init__(
        self,
        spec: DeploymentSpec,
        folder: Path,
        log_file: Path,
        attempt: str,
        on_exit: Callable[[], None] | None = None,
        users: UserPool | None = None,
    ) -> None:
        """Start the process; ``on_exit`` is called (from another thread) once it ended.
        With ``users``, it runs as an id taken from the pool for this process alone: one id
        per instance start rather than per deployment, so the id can be reaped (whatever the
        process left running killed) the moment this process ends without touching the
        deployment's other instances, and two instances cannot read each other's process
        environment. Raises ``OSError``, or ``NoUserError`` when no id is free."""
        self.status_file = folder / "status.json"
        self.log_file = log_file
        self.folder = folder
        self.uid: int | None = None
        self._users = users
        self._released = threading.Lock()
        self._release_done = False
        if users is not None and folder.exists():
            # A folder an earlier id owned may hold links it planted for the server to
            # write through: the server only ever writes into a folder it made afresh.
            shutil.rmtree(folder)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        (folder / "tmp").mkdir(exist_ok=True)
        self.status_file.unlink(missing_ok=True)
        config = folder / "config.json"
        config.write_text(json.dumps(_config(spec, self.status_file)), encoding="utf-8")
        if users is not None:
            try:
                self.uid = users.take(f"{spec.name}/{folder.name}")
            except Exception as error:  # the pool's own error, e.g. no_free_job_user
                raise NoUserError(str(error)) from error
        try:
            self.popen, piped = self._start(spec, config, attempt)
        except BaseException:
            self._release()
            raise
        if on_exit is not None or users is not None:
            threading.Thread(
                target=self._wait_then, args=(on_exit,), name=f"wait-{self.pid}", daemon=True
            ).start()
        if piped:
            assert self.popen.stdout is not None
            threading.Thread(
                target=_copy_masked,
                args=(self.popen.stdout, log_file, [v.encode() for v in spec.masked if v]),
                name=f"log-{self.popen.pid}",
                daemon=True,
            ).start()

    def _start(
        self, spec: DeploymentSpec, config: Path, attempt: str
    ) -> tuple[subprocess.Popen[bytes], bool]:
        server = SCORING_SERVER
        as_user: dict[str, Any] = {}
        if self.uid is not None:
            # Shipyard may be installed where other users cannot read (a venv under /root):
            # the instance runs its own copy of the scoring server.
            server = Path(shutil.copyfile(SCORING_SERVER, self.folder / SCORING_SERVER.name))
            as_user = {"user": self.uid, "group": self.uid, "extra_groups": []}
            # Its own folder (status file, tmp, HOME); config.json stays the server's.
            for own in (self.folder, self.folder / "tmp"):
                os.chown(own, self.uid, self.uid)
        argv = [str(spec.python), str(server), "--config", str(config)]
        # A process of another user gets a pipe, never the log file: with the file as its
        # stdout it could truncate it (ftruncate) and rewrite its own past.
        piped = bool(spec.masked) or self.uid is not None
        with open(self.log_file, "ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"--- {stamp} starting {attempt}\n".encode())
            log.flush()
            popen = subprocess.Popen(  # noqa: S603 - our argv, no shell
                argv,
                cwd=spec.code_dir or self.folder,
                env=_environment(spec, self.folder),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                **as_user,
            )
        return popen, piped

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """None while it runs (reaps it once it has ended, and gives its user id back)."""
        code = self.popen.poll()
        if code is not None:
            self._release()
        return code

    def status(self) -> Status | None:
        try:
            data: dict[str, Any] = json.loads(_read_status(self.status_file))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        # Written by the user's process: only well-formed values count.
        port, error = data.get("port"), data.get("error")
        return Status(
            str(data.get("state")),
            port if isinstance(port, int) and 0 < port < 65536 else None,
            error if isinstance(error, str) else None,
        )

    def signal(self, sig: signal.Signals) -> None:
        """``sig`` to the whole process group (what ``init()`` started goes too)."""
        if self.popen.returncode is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.popen.pid, signal.SIGKILL)  # leftovers of a leader that ended
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def log_tail(self, lines: int) -> str:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                tail = deque(log.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
        except OSError:
            return ""
        return "\n".join(tail)

    def _wait_then(self, then: Callable[[], None] | None) -> None:
        self.popen.wait()
        self._release()
        if then is not None:
            then()

    def _release(self) -> None:
        """Once the process ended: its folder back to the server (whatever it still runs
        can no longer enter it), everything still running as its id killed, the id freed.
        Whoever sees the end first does it; a second caller waits until it is done."""
        with self._released:
            if self._release_done or self.uid is None or self._users is None:
                return
            self._release_done = True
            with contextlib.suppress(OSError):
                os.chown(self.folder, os.getuid(), os.getgid())
                self.folder.chmod(0o700)
            self._users.release(self.uid)


def _read_status(path: Path) -> str:
    """The status file as the instance wrote it. The folder is the instance's: a link
    (to a file only the server may read) is not followed, nor is anything but a plain file
    (a FIFO would block) read, nor more than a status holds."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a file")
        return handle.read(MAX_STATUS_BYTES).decode("utf-8", "replace")


def _config(spec: DeploymentSpec, status_file: Path) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": 0,
        "model_dir": str(spec.model_dir),
        "code_dir": str(spec.code_dir) if spec.code_dir else None,
        "scoring_script": spec.scoring_script,
        "mlflow_model": spec.mlflow_model,
        "request_timeout_ms": spec.request_timeout_ms,
        "max_concurrent_requests": spec.max_concurrent_requests,
        "max_body_bytes": spec.max_body_bytes,
        "status_file": str(status_file),
        "parent_pid": os.getpid(),
    }


def _environment(spec: DeploymentSpec, folder: Path) -> dict[str, str]:
    bin_dir = spec.python.parent
    env = {
        "HOME": str(folder),
        "TMPDIR": str(folder / "tmp"),
        "LANG": "C.UTF-8",
        "PATH": f"{bin_dir}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
    }
    if (bin_dir.parent / "pyvenv.cfg").is_file():
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env.update(spec.environment_variables)
    return env


def _copy_masked(source: IO[bytes], log_file: Path, masked: list[bytes]) -> None:
    """Copy the instance's output to its log a line at a time, secrets replaced."""
    with source, open(log_file, "ab", buffering=0) as log:
        for line in source:
            for value in masked:
                line = line.replace(value, MASK)
            log.write(line)
