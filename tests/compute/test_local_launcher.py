"""The local launcher and its supervisor, without a server: a job ends when its command
does, even when something it started in the background still holds its output open, and
what it left in its process group is stopped."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from shipyard.compute.launchers.local import Exit, LocalLauncher

LEAVES_BEHIND = "sleep 300 & echo $! > leftover.pid; echo main done"


def run(tmp_path: Path, command: str, masked: list[str]) -> tuple[Exit, float]:
    launcher = LocalLauncher()
    handle = launcher.start(
        tmp_path,
        ["/bin/bash", "-c", command],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        log_file=tmp_path / "log.txt",
        masked=masked,
    )
    started = time.monotonic()
    while (ended := launcher.poll(handle)) is None:
        assert time.monotonic() - started < 30, "the job did not end with its command"
        time.sleep(0.05)
    return ended, time.monotonic() - started


@pytest.mark.parametrize("masked", [[], ["a-secret-value"]], ids=["direct", "masked"])
def test_a_job_ends_with_its_command_and_its_leftovers_are_stopped(
    tmp_path: Path, masked: list[str]
) -> None:
    ended, _ = run(tmp_path, LEAVES_BEHIND + "; echo a-secret-value", masked)
    assert ended == Exit(exit_code=0, signal=None)
    log = (tmp_path / "log.txt").read_text()
    assert "main done" in log
    assert ("***" in log) == bool(masked)
    leftover = int((tmp_path / "leftover.pid").read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(leftover) and time.monotonic() < deadline:
        if psutil.Process(leftover).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    assert not psutil.pid_exists(leftover) or (
        psutil.Process(leftover).status() == psutil.STATUS_ZOMBIE
    )
