"""Watches one job process on a Ray node: what the runner's sampling does for local jobs,
done where the process runs, since the server cannot see a Ray node's processes.

Run by path with the server's own Python (``python -I ray_monitor.py``), the entrypoint of
a one-instance Ray job and the wrapper of each instance of a several-instance one; it
imports nothing from Shipyard (only psutil besides the standard library), so it starts fast.

usage: ray_monitor.py [--memory-mb M] [--interval S] [--prefix P] -- ARGV...

It starts ARGV (in its own process group, so Ray's SIGTERM and SIGKILL to the entrypoint's
group reach the job directly; and dying with the monitor) and samples the process tree about
every second:
- the CPU use and resident memory go to the job's run as ``<prefix>cpu_utilization_percentage``
  and ``<prefix>memory_usage_megabytes`` every ``--interval`` seconds, through the tracking
  API with the job's own token (``MLFLOW_TRACKING_URI``/``_TOKEN``/``MLFLOW_RUN_ID``, which
  every job has); a server that does not answer only costs those samples;
- past ``--memory-mb`` the tree is killed at once and a line starting with
  ``MEMORY_LINE`` says why (the launcher turns it into the job's error); the exit code is
  then ``MEMORY_EXIT``.
The monitor outlives a SIGTERM to wait for the job, and exits with the command's own exit
code.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from types import FrameType

import psutil

MEMORY_LINE = "shipyard: the job exceeded its memory limit"
MEMORY_EXIT = 137  # as if killed by SIGKILL, which it was
SAMPLE_EVERY = 1.0  # seconds between memory checks
MiB = 1024 * 1024


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ray_monitor.py")
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--prefix", default="system/")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    # The group's SIGTERM is for the job: stay to see how it ends (a handler, which exec
    # resets for the job, not SIG_IGN, which the job would inherit).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _ignore)
    child = subprocess.Popen(args.command, preexec_fn=_die_with_parent)  # noqa: S603 - the job's argv
    reporter = _Reporter(args.prefix)
    root = psutil.Process(child.pid)
    last_cpu, last_at, logged_at = 0.0, time.monotonic(), 0.0
    while True:
        try:
            code = child.wait(timeout=min(SAMPLE_EVERY, args.interval))
            break
        except subprocess.TimeoutExpired:
            pass
        usage = _usage(root)
        if usage is None:  # it ended since the wait: the next wait collects its status
            continue
        rss, cpu = usage
        now = time.monotonic()
        if args.memory_mb and rss > args.memory_mb * MiB:
            print(
                f"{MEMORY_LINE} of {args.memory_mb} MB (used {rss // MiB} MB) and was stopped",
                file=sys.stderr,
                flush=True,
            )
            _kill_tree(root)
            child.wait()
            return MEMORY_EXIT
        if now - logged_at >= args.interval:
            percent = 100.0 * (cpu - last_cpu) / max(now - last_at, 1e-6)
            reporter.send(round(percent, 2), round(rss / MiB, 2))
            logged_at = now
        last_cpu, last_at = cpu, now
    return code if code >= 0 else 128 - code


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    return None


def _die_with_parent() -> None:
    """The job dies with the monitor (only prctl: safe between fork and exec)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill_tree(root: psutil.Process) -> None:
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        processes = [root]
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


def _usage(root: psutil.Process) -> tuple[int, float] | None:
    """Resident memory and CPU seconds of the command and everything it started; None once
    the command itself has ended (a zombie has neither: a sample of it would read 0 MB and a
    negative CPU use)."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss, cpu = 0, 0.0
    for process in processes:
        try:
            with process.oneshot():
                # psutil reads a zombie's memory and CPU times as zeros, without an error.
                ended = process.status() == psutil.STATUS_ZOMBIE
                if not ended:
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            ended = True
        if ended and process is root:
            return None
    return rss, cpu


class _Reporter:
    """Samples into the job's run through the tracking API (MLflow's log-batch)."""

    def __init__(self, prefix: str) -> None:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        self.url = f"{uri.rstrip('/')}/api/2.0/mlflow/runs/log-batch" if uri else ""
        self.token = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
        self.run_id = os.environ.get("MLFLOW_RUN_ID", "")
        self.prefix = prefix
        self.step = 0

    def send(self, cpu_percent: float, memory_mb: float) -> None:
        if not (self.url and self.run_id):
            return
        stamp = int(time.time() * 1000)
        metrics = [
            {"key": f"{self.prefix}{key}", "value": value, "timestamp": stamp, "step": self.step}
            for key, value in (
                ("cpu_utilization_percentage", cpu_percent),
                ("memory_usage_megabytes", memory_mb),
            )
        ]
        self.step += 1
        request = urllib.request.Request(  # noqa: S310 - the server's own http(s) URL
            self.url,
            data=json.dumps({"run_id": self.run_id, "metrics": metrics}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        # A server that is restarting or slow costs this sample, never the job.
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
