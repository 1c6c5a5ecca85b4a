"""Supervises one local job process: run by path (``python -I supervise.py``), imports nothing
from Shipyard, so it starts in a few milliseconds.

It is the leader of the job's own session and process group, so it outlives a server that
dies: it waits for the job, then writes the exit status to a file the server reads when it
comes back. Without it a restarted server could see that the process is gone but not how it
ended.

usage: supervise.py [--uid N] EXIT_FILE LOG_FILE -- ARGV...

With ``--uid``, the job runs as that user and group and no other groups (the supervisor
stays root, to write the log and the exit status where the job cannot).

Standard input carries a JSON list of strings to mask in the log (secret values injected
into the job); with none, the job writes straight to the log file and this process only
waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time

MASK = b"***"
FLUSH_AFTER = 0.2  # seconds a partial line may wait before it is written anyway
DRAIN_AFTER_EXIT = 1.0  # seconds the output is still read after the command exits


def main(argv: list[str]) -> int:
    uid: int | None = None
    if argv[:1] == ["--uid"]:
        uid, argv = int(argv[1]), argv[2:]
    groups: list[int] | None = [] if uid is not None else None
    exit_file, log_file, dashdash, *command = argv
    if dashdash != "--" or not command:
        print("usage: supervise.py [--uid N] EXIT_FILE LOG_FILE -- ARGV...", file=sys.stderr)
        return 2
    masked = [s.encode() for s in json.loads(sys.stdin.read() or "[]") if s]
    # SIGTERM to the group is for the job: stay to record how it ended.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(log_file, "ab", buffering=0) as log:
        if masked:
            child = subprocess.Popen(  # noqa: S603 - the argv the launcher built
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                restore_signals=True,
                preexec_fn=_default_term,
                user=uid,
                group=uid,
                extra_groups=groups,
            )
            assert child.stdout is not None
            _pump(child.stdout.fileno(), log, masked, child)
        else:
            child = subprocess.Popen(  # noqa: S603 - the argv the launcher built
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_default_term,
                user=uid,
                group=uid,
                extra_groups=groups,
            )
        code = child.wait()
        _stop_leftovers()
    status: dict[str, float | None] = {
        "exit_code": code if code >= 0 else None,
        "signal": -code if code < 0 else None,
        "ended_at": time.time(),
    }
    temporary = exit_file + ".tmp"
    with open(temporary, "w") as out:
        json.dump(status, out)
    os.replace(temporary, exit_file)
    return 0


def _default_term() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_leftovers() -> None:
    """The job ends with its command: what it left running in its process group gets
    SIGTERM (this process ignores it)."""
    with contextlib.suppress(OSError):
        os.killpg(0, signal.SIGTERM)


def _pump(fd: int, log: object, masked: list[bytes], child: subprocess.Popen[bytes]) -> None:
    """Copy the job's output to the log with every secret value replaced, a line at a
    time (a value split across two reads is still caught while it sits in one line). Ends
    at the end of the output, or a moment after the command exits while something it left
    behind still holds the output open."""
    write = log.write  # type: ignore[attr-defined]
    pending = b""
    last = time.monotonic()
    exited_at: float | None = None
    while True:
        ready, _, _ = select.select([fd], [], [], FLUSH_AFTER)
        if exited_at is None and child.poll() is not None:
            exited_at = time.monotonic()
            _stop_leftovers()
        elif exited_at is not None and time.monotonic() - exited_at > DRAIN_AFTER_EXIT:
            ready = []
            break
        if ready:
            data = os.read(fd, 65536)
            if not data:
                break
            pending += data
        cut = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1
        now = time.monotonic()
        if not cut and pending and (now - last >= FLUSH_AFTER or len(pending) > 1 << 20):
            cut = len(pending)
        if cut:
            write(mask(pending[:cut], masked))
            pending = pending[cut:]
            last = now
    if pending:
        write(mask(pending, masked))


def mask(data: bytes, masked: list[bytes]) -> bytes:
    """``data`` with every one of ``masked`` replaced by ***."""
    for value in masked:
        data = data.replace(value, MASK)
    return data


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
