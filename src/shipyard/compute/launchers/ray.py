"""The Ray launcher: a job as a Ray job, through Ray's job submission API.

``start`` submits the job to the cluster's dashboard (``submission_id``
``shipyard-<job id>-<attempt>``, so a restarted server finds it again) with the code
snapshot as ``working_dir`` and the job's whole environment as ``env_vars``. The entrypoint
is the rendered command run by ``bash -c`` (quoted once, as the local launcher passes it in
an argument list), with the built environment's ``bin`` first on ``PATH``. It runs in the
job's own folder when that folder is visible on the Ray node (a local cluster, or a
filesystem shared with the server), so ``./outputs`` and mounted inputs work as on local
compute; elsewhere it runs in Ray's unpacked copy of the code and says so in the log.

The command runs under ``ray_monitor.py`` (with the server's own Python, where the node has
it): the server cannot see a Ray node's processes, so the monitor samples the job's CPU and
memory into its run and enforces ``resources.memory`` there (see there); a node without that
Python runs the command bare. ``instance_count`` > 1 runs ``ray_driver.py`` as the entrypoint
instead: it places one monitored process per instance across the cluster and fails the job
if any fails (see there).

A thread per job follows the job's log (``tail_job_logs``) into the job's
``user_logs/std_log.txt`` with the secret values masked, and learns how the job ended; so
``poll`` costs no request. Ray's own lines before the entrypoint starts (setting up the
runtime environment) go to the system log instead. The handle holds the cluster's address
and the submission id, and for each secret value only where it sits in the job's
environment (variable, offset, length): after a restart the follower reads the values back
from Ray's record of the job to mask them again, and never stores them.

``ray`` is imported on first use only: a server that never runs a Ray job never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
import signal as signals
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from shipyard.compute.launchers.local import Exit, Usage
from shipyard.compute.launchers.ray_monitor import MEMORY_LINE

# The local supervisor's masking, so both launchers hide secrets the same way.
from shipyard.compute.launchers.supervise import mask
from shipyard.domain.errors import InvalidInputError, ShipyardError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

log = logging.getLogger(__name__)

DRIVER = Path(__file__).with_name("ray_driver.py")
MONITOR = Path(__file__).with_name("ray_monitor.py")
# Ray writes "Running entrypoint for job <id>: <entrypoint>" into the job's log as it starts
# the entrypoint (flushed a moment after the entrypoint may have written its first lines).
# The entrypoint ends with a comment naming the submission, so the whole line can be found
# and moved to the system log even when the command in it spans several lines.
HEADER = "Running entrypoint for job {}: "
HEADER_END = " # shipyard:{}\n"
# Ray's own log lines in the job's log (setting up the runtime environment).
RAY_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\t[A-Z]+ \S+:\d+ -- ")
PROBE_TIMEOUT = 3.0
MiB = 1024 * 1024
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


def check_address(address: str, *, field: str = "address") -> str:
    """The dashboard address, normalised (no trailing slash); 400 naming ``field`` for
    anything but a plain ``http(s)://host[:port][/path]``."""
    value = address.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(
            f"{address[:200]!r} is not a URL: {exc}", code="invalid_address", field=field
        ) from exc
    if parts.scheme == "ray":
        raise InvalidInputError(
            "ray:// is the Ray Client's address; give the dashboard's address "
            f"(http://{parts.hostname or 'host'}:8265), where Ray's job submission API answers",
            code="invalid_address",
            field=field,
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            "the address must be the Ray dashboard's http(s)://host:port (e.g. "
            "http://ray-head:8265)",
            code="invalid_address",
            field=field,
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            "the address may not hold a user name or password (it is shown to every reader "
            "of the compute)",
            code="invalid_address",
            field=field,
        )
    if parts.query or parts.fragment or (port is not None and port == 0):
        raise InvalidInputError(
            "the address may not hold a query, a fragment or port 0",
            code="invalid_address",
            field=field,
        )
    return value


def probe(address: str, timeout: float = PROBE_TIMEOUT) -> str:
    """Ask the cluster for its version (``GET <address>/api/version``, what Ray's own client
    asks first); the Ray version, or a 400 naming ``address`` saying what went wrong."""
    try:
        answer = httpx.get(f"{address}/api/version", timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise InvalidInputError(
            f"the Ray cluster at {address} does not answer ({type(exc).__name__}); check the "
            "address and that the Ray dashboard listens there",
            code="compute_unreachable",
            field="address",
        ) from exc
    if answer.status_code in (401, 403):
        raise InvalidInputError(
            f"the Ray cluster at {address} asks for credentials (HTTP {answer.status_code}); "
            "Shipyard talks to Ray's job API without them: run the cluster with "
            "RAY_AUTH_MODE=disabled behind your own network controls",
            code="compute_unreachable",
            field="address",
        )
    try:
        version = answer.json().get("ray_version") if answer.status_code == 200 else None
    except (ValueError, AttributeError):
        version = None
    if not isinstance(version, str):
        raise InvalidInputError(
            f"{address} answered HTTP {answer.status_code} but is not a Ray dashboard (no "
            "ray_version at /api/version); give the dashboard's address, port 8265 by default",
            code="not_a_ray_cluster",
            field="address",
        )
    return version


@dataclass(frozen=True)
class RayExit(Exit):
    """How a Ray job ended; ``message`` is Ray's reason when there is no exit code to tell
    it (the runtime environment failed to set up, the job was stopped outside Shipyard)."""

    message: str | None = None


@dataclass(frozen=True)
class RayJob:
    """What the runner asks of the cluster for one job."""

    address: str
    submission_id: str
    cpus: float
    gpus: int
    memory_mb: int
    instance_count: int


class RayLauncher:
    def __init__(
        self,
        python: str = sys.executable,
        *,
        lost_after: float = 900.0,
        metrics_interval: float = 15.0,
    ) -> None:
        self.python = python
        self.metrics_interval = metrics_interval
        # How long the cluster may not answer about a job before the job is given up.
        self.lost_after = lost_after
        self._clients: dict[str, JobSubmissionClient] = {}
        self._followers: dict[str, _Follower] = {}
        self._stopping: set[str] = set()
        self._lock = threading.Lock()

    # -- the launcher's face ----------------------------------------------------------------

    def start(
        self,
        job: RayJob,
        command: str,
        *,
        job_dir: Path,
        cwd: Path,
        env: dict[str, str],
        log_file: Path,
        system_log: Path,
        masked: list[str],
        on_exit: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Submit the job; returns the handle to store with it."""
        client = self._client(job.address)
        single = job.instance_count == 1
        client.submit_job(
            entrypoint=self.entrypoint(job, command, cwd),
            submission_id=job.submission_id,
            runtime_env={"working_dir": str(cwd), "env_vars": env},
            # With several instances the driver only coordinates: the instances hold the
            # resources, in a placement group.
            entrypoint_num_cpus=job.cpus if single else None,
            entrypoint_num_gpus=job.gpus if single and job.gpus else None,
            entrypoint_memory=job.memory_mb * MiB if single and job.memory_mb else None,
            metadata={"shipyard_job_dir": str(job_dir)},
        )
        handle = {
            "launcher": "ray",
            "address": job.address,
            "submission_id": job.submission_id,
            "job_dir": str(job_dir),
            "log_file": str(log_file),
            "masks": _positions(env, masked),
        }
        self._follow(handle, masked=masked, system_log=system_log, on_exit=on_exit)
        return handle

    def poll(self, handle: dict[str, Any]) -> Exit | None:
        """None while the job runs; how it ended once it has. A handle this launcher does
        not follow yet (a server that restarted) is followed from now on."""
        follower = self._followers.get(handle["submission_id"])
        if follower is None:
            follower = self._follow(handle, masked=None, system_log=None, on_exit=None)
        ended = follower.exit
        if ended is not None:
            with self._lock:
                self._followers.pop(handle["submission_id"], None)
                self._stopping.discard(handle["submission_id"])
        return ended

    def signal(self, handle: dict[str, Any], sig: signals.Signals) -> None:
        """Any signal stops the Ray job (Ray sends SIGTERM, then SIGKILL after a few
        seconds); asked once, from a thread of its own, so a cluster that does not answer
        never holds up the runner."""
        submission_id = handle["submission_id"]
        with self._lock:
            if submission_id in self._stopping:
                return
            self._stopping.add(submission_id)

        def stop() -> None:
            try:
                self._client(handle["address"]).stop_job(submission_id)
            except Exception as exc:  # the follower reports a cluster that is gone
                log.warning(
                    "stopping a Ray job failed",
                    extra={"submission_id": submission_id, "error": repr(exc)[:300]},
                )
                with self._lock:
                    self._stopping.discard(submission_id)

        threading.Thread(target=stop, name=f"ray-stop-{submission_id}", daemon=True).start()

    def usage(self, handle: dict[str, Any]) -> Usage | None:
        """Ray jobs are not sampled: their processes are on the cluster's nodes."""
        return None

    def close(self) -> None:
        """Stop following (the jobs keep running on the cluster)."""
        with self._lock:
            followers = list(self._followers.values())
            self._followers.clear()
        for follower in followers:
            follower.close()

    # -- parts ------------------------------------------------------------------------------

    def entrypoint(self, job: RayJob, command: str, cwd: Path) -> str:
        """The shell line Ray runs (it runs entrypoints with ``sh -c``): every piece quoted,
        the user's command one argument to ``bash -c``."""
        bare = shlex.join(["bash", "-c", command])
        watch = ["--memory-mb", str(job.memory_mb), "--interval", repr(self.metrics_interval)]
        if job.instance_count == 1:
            run = shlex.join([self.python, "-I", str(MONITOR), *watch, "--", "bash", "-c", command])
        else:
            run = shlex.join(
                [
                    self.python,
                    "-I",
                    str(DRIVER),
                    "--instances",
                    str(job.instance_count),
                    "--cpus",
                    repr(float(job.cpus)),
                    "--gpus",
                    str(job.gpus),
                    *watch,
                    "--monitor",
                    str(MONITOR),
                    "--cwd",
                    str(cwd),
                    "--",
                    command,
                ]
            )
        elsewhere = shlex.quote(
            f"shipyard: {cwd} is not visible on this Ray node: running in Ray's copy of the "
            "code; files written under ./outputs and ./logs will not be collected"
        )
        where = shlex.quote(str(cwd))
        python = shlex.quote(self.python)
        end = HEADER_END.format(job.submission_id).rstrip("\n")
        if job.instance_count > 1:  # the driver needs the server's Python: no way around it
            return f"if ! cd {where} 2>/dev/null; then echo {elsewhere} >&2; fi; exec {run}{end}"
        return (
            f"if ! cd {where} 2>/dev/null; then echo {elsewhere} >&2; fi; "
            f"if [ -x {python} ]; then exec {run}; fi; exec {bare}{end}"
        )

    def _client(self, address: str) -> JobSubmissionClient:
        with self._lock:
            client = self._clients.get(address)
        if client is not None:
            return client
        # Ray's client waits on requests without a time limit: ask first with one, so a
        # cluster that is gone fails now instead of hanging a worker. Not the user's
        # mistake but the infrastructure's: a ConnectionError, which the runner retries.
        try:
            probe(address)
        except InvalidInputError as exc:
            raise ConnectionError(exc.detail) from exc
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError as exc:  # not retried: installing Ray is the fix
            raise ShipyardError(
                "this server cannot run jobs on Ray: install its Ray support "
                "(pip install 'shipyard[ray]')",
                code="compute_unavailable",
                field="compute",
            ) from exc

        # Ray's client logs every package upload and closed log stream at INFO.
        logging.getLogger("ray").setLevel(logging.WARNING)
        client = JobSubmissionClient(address)
        with self._lock:
            self._clients.setdefault(address, client)
            return self._clients[address]

    def _follow(
        self,
        handle: dict[str, Any],
        *,
        masked: list[str] | None,
        system_log: Path | None,
        on_exit: Callable[[], None] | None,
    ) -> _Follower:
        follower = _Follower(self, handle, masked, system_log, on_exit)
        with self._lock:
            found = self._followers.setdefault(handle["submission_id"], follower)
        if found is follower:
            follower.start()
        return found


class _Follower:
    """Follows one Ray job: its log into the job's log file, then how it ended."""

    def __init__(
        self,
        launcher: RayLauncher,
        handle: dict[str, Any],
        masked: list[str] | None,
        system_log: Path | None,
        on_exit: Callable[[], None] | None,
    ) -> None:
        self.launcher = launcher
        self.address = str(handle["address"])
        self.submission_id = str(handle["submission_id"])
        self.log_file = Path(handle["log_file"])
        self.positions: list[list[Any]] = list(handle.get("masks", []))
        self.masked = masked
        self.system_log = system_log
        self.on_exit = on_exit
        self.exit: Exit | None = None
        self.memory_reason: str | None = None  # the monitor stopped the job for its memory
        self._pending = ""
        self._in_prefix = True  # Ray's header line not found yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"ray-{self.submission_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._follow())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # never leave the job without an end
            log.exception("following a Ray job failed", extra={"submission_id": self.submission_id})
            self.exit = RayExit(
                None, None, lost=True, message=f"following the Ray job failed: {exc}"
            )
        finally:
            loop.close()
        if self.on_exit is not None and not self._closed:
            self.on_exit()

    async def _follow(self) -> None:
        received = 0
        failing_since: float | None = None
        while not self._closed:
            try:
                client = self.launcher._client(self.address)
                info = client.get_job_info(self.submission_id)  # 404 for a job Ray forgot
                if self.masked is None:
                    self._reattach(info.runtime_env)
                if str(info.status) not in _TERMINAL:
                    skip = received
                    async for chunk in client.tail_job_logs(self.submission_id):
                        if skip:  # a stream that started over: past what is written already
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk, skip = chunk[skip:], 0
                        received += len(chunk)
                        self._write(chunk)
                    info = client.get_job_info(self.submission_id)
                if str(info.status) in _TERMINAL:
                    # The stream may close a moment before the last lines reach it.
                    everything = client.get_job_logs(self.submission_id)
                    if len(everything) > received:
                        self._write(everything[received:])
                    self._write("", final=True)
                    self.exit = _exit_of(str(info.status), info.driver_exit_code, info.message)
                    if self.memory_reason and self.exit.exit_code != 0:
                        self.exit = RayExit(None, None, message=self.memory_reason)
                    return
                failing_since = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ended = self._failed(exc, failing_since)
                if ended is not None:
                    self._write("", final=True)
                    self.exit = ended
                    return
                failing_since = failing_since or time.monotonic()
            # A second after a stream that ended early; longer while the cluster is away.
            waited = time.monotonic() - failing_since if failing_since else 0.0
            await asyncio.sleep(min(1.0 + waited / 10, 10.0))

    def _failed(self, exc: Exception, failing_since: float | None) -> Exit | None:
        """How the job ended when the cluster cannot tell any more; None to try again."""
        if _unknown_job(exc):
            return RayExit(
                None,
                None,
                lost=True,
                message=f"the Ray cluster at {self.address} no longer knows job "
                f"{self.submission_id} (was the cluster restarted?)",
            )
        if (
            failing_since is not None
            and time.monotonic() - failing_since > self.launcher.lost_after
        ):
            return RayExit(
                None,
                None,
                lost=True,
                message=f"the Ray cluster at {self.address} did not answer about the job for "
                f"{int(self.launcher.lost_after)} s ({type(exc).__name__})",
            )
        if failing_since is None:  # once per outage, not at every try
            log.warning(
                "following a Ray job: the cluster did not answer; trying again",
                extra={"submission_id": self.submission_id, "error": repr(exc)[:300]},
            )
        return None

    def _reattach(self, runtime_env: dict[str, Any] | None) -> None:
        """After a restart: the secret values back from Ray's record of the job (where the
        handle says they sit), and the log written again from its start."""
        env = (runtime_env or {}).get("env_vars") or {}
        self.masked = [
            str(env[name])[start : start + length]
            for name, start, length in self.positions
            if name in env
        ]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.write_bytes(b"")

    def _write(self, text: str, *, final: bool = False) -> None:
        """Whole lines only (a secret split over two chunks is still masked), unless the
        job has ended or a line grows past 1 MiB; nothing until Ray's header has come."""
        self._pending += text
        if self._in_prefix and not self._split_header(final):
            return
        cut = self._pending.rfind("\n") + 1
        if final or len(self._pending) > MiB:
            cut = len(self._pending)
        if not cut:
            return
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        if self.memory_reason is None and MEMORY_LINE in ready:
            line = ready[ready.index(MEMORY_LINE) :].splitlines()[0]
            self.memory_reason = line.removeprefix("shipyard: the job ").strip()
        _append(self.log_file, self._mask(ready))

    def _split_header(self, final: bool) -> bool:
        """Move Ray's set-up lines and its header line to the system log, keeping the job's
        own lines in order; False to wait for more."""
        start = self._pending.find(HEADER.format(self.submission_id))
        end = self._pending.find(HEADER_END.format(self.submission_id), max(start, 0))
        if (start < 0 or end < 0) and not final and len(self._pending) <= MiB:
            return False
        self._in_prefix = False
        if start < 0 or end < 0:
            return True
        stop = end + len(HEADER_END.format(self.submission_id))
        before, header, after = (
            self._pending[:start],
            self._pending[start:stop],
            self._pending[stop:],
        )
        lines = before.splitlines(keepends=True)
        self._to_system("".join(x for x in lines if RAY_LINE.match(x)) + header)
        self._pending = "".join(x for x in lines if not RAY_LINE.match(x)) + after
        return True

    def _to_system(self, text: str) -> None:
        if self.system_log is not None and text:
            _append(self.system_log, self._mask(text))

    def _mask(self, text: str) -> bytes:
        return mask(text.encode("utf-8", "replace"), [m.encode() for m in self.masked or [] if m])


def _positions(env: dict[str, str], masked: list[str]) -> list[list[Any]]:
    """Where each secret value sits in the environment: (variable, offset, length)."""
    found: list[list[Any]] = []
    for value in masked:
        if not value:
            continue
        for name, text in env.items():
            start = text.find(value)
            if start >= 0:
                found.append([name, start, len(value)])
                break
    return found


def _exit_of(status: str, exit_code: int | None, message: str | None) -> Exit:
    if status == "SUCCEEDED":
        return RayExit(exit_code=0, signal=None)
    if status == "STOPPED":
        return RayExit(None, None, message="the Ray job was stopped outside Shipyard")
    if exit_code is not None and exit_code < 0:
        return RayExit(exit_code=None, signal=-exit_code)
    if exit_code is not None:
        return RayExit(exit_code=exit_code, signal=None)
    reason = (message or "no reason given").strip().splitlines()
    return RayExit(None, None, message=f"the Ray job failed: {reason[0][:500] if reason else ''}")


def _unknown_job(exc: Exception) -> bool:
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("does not exist" in text or "404" in text)


def _append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as out:
        out.write(data)
