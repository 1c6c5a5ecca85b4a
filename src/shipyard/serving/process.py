"""One instance process: its config, environment and log, how it is started and stopped.

The process runs ``scoring_server.py`` by path under the deployment's own interpreter, in a
new session (so it and whatever ``init()`` starts form one process group to signal), with
nothing of the server's environment (it may hold keys): only where it is, the user's
variables and ``PYTHONUNBUFFERED`` so its log is live. It watches the server's pid and stops
when the server is gone, so a killed server leaves no instances holding ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shipyard.serving.spec import DeploymentSpec

SCORING_SERVER = Path(__file__).with_name("scoring_server.py")
INIT_FAILED_EXIT = 3  # scoring_server.py's exit status when init() raised
MASK = b"***"


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
    ) -> None:
        """Start the process; ``on_exit`` is called (from another thread) once it ended."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tmp").mkdir(exist_ok=True)
        self.status_file = folder / "status.json"
        self.status_file.unlink(missing_ok=True)
        self.log_file = log_file
        config = folder / "config.json"
        config.write_text(json.dumps(_config(spec, self.status_file)), encoding="utf-8")
        argv = [str(spec.python), str(SCORING_SERVER), "--config", str(config)]
        with open(log_file, "ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"--- {stamp} starting {attempt}\n".encode())
            log.flush()
            piped = bool(spec.masked)
            self.popen = subprocess.Popen(  # noqa: S603 - our argv, no shell
                argv,
                cwd=spec.code_dir or folder,
                env=_environment(spec, folder),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        if on_exit is not None:
            threading.Thread(
                target=_wait_then, args=(self.popen, on_exit), name=f"wait-{self.pid}", daemon=True
            ).start()
        if piped:
            assert self.popen.stdout is not None
            threading.Thread(
                target=_copy_masked,
                args=(self.popen.stdout, log_file, [v.encode() for v in spec.masked if v]),
                name=f"log-{self.popen.pid}",
                daemon=True,
            ).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """None while it runs (reaps it once it has ended)."""
        return self.popen.poll()

    def status(self) -> Status | None:
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        port = data.get("port")
        return Status(str(data.get("state")), int(port) if port else None, data.get("error"))

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


def _wait_then(popen: subprocess.Popen[bytes], then: Callable[[], None]) -> None:
    popen.wait()
    then()


def _copy_masked(source: IO[bytes], log_file: Path, masked: list[bytes]) -> None:
    """Copy the instance's output to its log a line at a time, secrets replaced."""
    with source, open(log_file, "ab", buffering=0) as log:
        for line in source:
            for value in masked:
                line = line.replace(value, MASK)
            log.write(line)
