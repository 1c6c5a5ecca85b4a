"""How a job ended, in the words a user reads: its final status and its ``error``.

The runner knows why it stopped a job itself (a timeout, the memory limit, a cancel); the
launcher knows how the process ended (exit code, signal, lost, Ray's message); a container
engine knows whether the kernel killed it for memory; the job's log knows what the command
said last. ``outcome`` puts these together, the most specific first.
"""

from __future__ import annotations

import signal
from pathlib import Path

from shipyard.compute.containers import ContainerEngine
from shipyard.compute.launchers.local import Exit
from shipyard.compute.launchers.ray import RayExit
from shipyard.services.job_logs import last_error_line

Outcome = tuple[str, str | None]  # (status, error)


def outcome(stopped: Outcome | None, ended: Exit, log_file: Path | None = None) -> Outcome:
    """``stopped``: the status and reason when the runner ended the job itself. ``log_file``:
    where a failed command's last error line is quoted from."""
    if stopped is not None:
        return stopped
    message = ended.message if isinstance(ended, RayExit) else None
    if ended.lost:
        return "Failed", message or (
            "the job's process ended while the server was down and left no exit status"
        )
    if ended.exit_code == 0:
        return "Completed", None
    if ended.exit_code is None and ended.signal is None and message:
        return "Failed", message
    if ended.signal is not None:
        hint = " (the system may have run out of memory)" if ended.signal == signal.SIGKILL else ""
        return "Failed", f"the job was killed by signal {ended.signal}{hint}"
    error = f"the command exited with code {ended.exit_code}"
    # Say why it failed, as far as its log tells, without a trip to the log.
    quoted = last_error_line(log_file) if log_file is not None else None
    return "Failed", f"{error}: {quoted}" if quoted else error


def container_stop(
    containers: ContainerEngine, job_id: str, exit_code: int | None, memory_mb: int
) -> Outcome | None:
    """An image job the kernel stopped for its memory limit: the engine says whether it did."""
    if containers.oom_killed(job_id):
        return "Failed", f"exceeded its memory limit of {memory_mb} MB (killed by the kernel)"
    if memory_mb and exit_code == 137:
        # Not every engine flags a process the kernel killed that is not the container's
        # first one: say what is known.
        return "Failed", (
            f"killed (exit code 137) while limited to {memory_mb} MB of memory: most likely "
            "the kernel stopped it for exceeding that limit"
        )
    return None
