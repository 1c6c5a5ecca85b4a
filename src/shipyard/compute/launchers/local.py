"""The local launcher: a job as a process group on the server's own host.

Each job runs under ``supervise.py`` (see there) in a new session, so the job and everything
it starts form one process group the launcher can signal as a whole, and the job survives a
server restart. A handle (pid, the process's start time, the job folder) is all the launcher
needs to find the job again: the start time guards against a recycled pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

SUPERVISOR = Path(__file__).with_name("supervise.py")
EXIT_FILE = "exit.json"


@dataclass(frozen=True)
class Exit:
    exit_code: int | None  # None when a signal ended it
    signal: int | None
    lost: bool = False  # the process is gone and left no exit status


@dataclass(frozen=True)
class Usage:
    rss_bytes: int
    cpu_seconds: float


class LocalLauncher:
    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        # Supervisors this launcher started, by pid: polled (which reaps them) rather than
        # left as zombies. After a restart they are not our children and are found by pid.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(
        self,
        job_dir: Path,
        command: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        log_file: Path,
        masked: list[str],
        on_exit: Callable[[], None] | None = None,
        uid: int | None = None,
    ) -> dict[str, Any]:
        """Start ``command`` (as user ``uid`` when given); returns the handle to store with
        the job. ``on_exit`` is called (from another thread) as soon as the job's process
        has ended."""
        exit_file = job_dir / EXIT_FILE
        exit_file.unlink(missing_ok=True)
        as_user = ["--uid", str(uid)] if uid is not None else []
        argv = [
            *(self.python, "-I", str(SUPERVISOR), *as_user),
            *(str(exit_file), str(log_file), "--", *command),
        ]
        with open(job_dir / "supervisor.log", "ab") as errors:
            # The argv is ours; the user's command is one argument to bash inside it.
            process = subprocess.Popen(  # noqa: S603
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=errors,
                stderr=errors,
                start_new_session=True,
                close_fds=True,
            )
        assert process.stdin is not None
        process.stdin.write(json.dumps(masked).encode())
        process.stdin.close()
        self._children[process.pid] = process
        if on_exit is not None:
            threading.Thread(
                target=_wait_then, args=(process, on_exit), name=f"wait-{process.pid}", daemon=True
            ).start()
        handle: dict[str, Any] = {
            "pid": process.pid,
            "started": _start_time(process.pid),
            "job_dir": str(job_dir),
        }
        if uid is not None:
            handle["uid"] = uid
        return handle

    def poll(self, handle: dict[str, Any]) -> Exit | None:
        """None while the job runs; how it ended once it has."""
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is None:
                return None
            del self._children[pid]
        elif _alive(pid, handle.get("started")):
            return None
        exit_file = Path(handle["job_dir"]) / EXIT_FILE
        try:
            status = json.loads(exit_file.read_text())
        except (OSError, ValueError):
            return Exit(exit_code=None, signal=None, lost=True)
        return Exit(exit_code=status.get("exit_code"), signal=status.get("signal"))

    def signal(self, handle: dict[str, Any], sig: signal.Signals) -> None:
        """Send ``sig`` to the job's whole process group (the supervisor ignores SIGTERM
        and stays to record the exit)."""
        pid = int(handle["pid"])
        if not _alive(pid, handle.get("started")) and pid not in self._children:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    def usage(self, handle: dict[str, Any]) -> Usage | None:
        """Memory and CPU time of the job's processes (the supervisor excluded)."""
        try:
            root = psutil.Process(int(handle["pid"]))
            processes = root.children(recursive=True)
        except psutil.Error:
            return None
        rss = 0
        cpu = 0.0
        for process in processes:
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    cpu += times.user + times.system
            except psutil.Error:
                continue
        return Usage(rss_bytes=rss, cpu_seconds=cpu)


def _wait_then(process: subprocess.Popen[bytes], then: Callable[[], None]) -> None:
    process.wait()
    then()


def _start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _alive(pid: int, started: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - float(started)) < 0.01
    except psutil.Error:
        return False
