"""The job runner: takes queued jobs to the end, on the ``local`` compute and on Ray clusters.

One thread runs the loop: pick queued jobs that fit the free slots (``compute.scheduler``),
claim queued jobs of Ray computes at once (Ray queues them itself), watch running ones
(exit, cancel, timeout, memory), and keep a heartbeat. Preparing a job (``job_preparation.py``:
code, environment, inputs) and finalizing it (logs, outputs, registration) take seconds,
so they run on a small pool of worker threads and never hold up the loop.

Everything the runner knows is in the store: a restarted server re-attaches to the jobs
whose processes still run (each runs under a supervisor that outlives the server and writes
its exit status; a Ray job is found again by its submission id), finalizes those that ended
meanwhile, and puts jobs caught while preparing back in the queue. Nothing stays Running
forever.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shipyard.compute.containers import ContainerEngine
from shipyard.compute.gpus import GpuSampler
from shipyard.compute.job_users import JobUsers
from shipyard.compute.launchers.local import Exit, LocalLauncher, Usage
from shipyard.compute.launchers.ray import RayLauncher
from shipyard.compute.scheduler import Candidate, Capacity, pick
from shipyard.domain.errors import ShipyardError
from shipyard.domain.principals import Principal
from shipyard.services.artifacts import ArtifactService
from shipyard.services.data import DataService
from shipyard.services.datastore_uris import DatastoreResolver
from shipyard.services.job_ending import JobEnd, record_end
from shipyard.services.job_environment import (
    revoke_job_tokens,
)
from shipyard.services.job_outcome import container_stop, outcome
from shipyard.services.job_outputs import SYSTEM_LOG, USER_LOG, JobOutputs
from shipyard.services.job_preparation import (
    EnvironmentProvider,
    JobPreparer,
    PreparedJob,
    append,
)
from shipyard.services.job_usage import MiB, usage_points
from shipyard.services.jobs import LocalCapacity, set_status
from shipyard.services.model_assets import ModelAssetService
from shipyard.services.pipeline_runner import PipelineRunner
from shipyard.services.runs import RunService
from shipyard.services.secrets import SecretService
from shipyard.services.sweep_runner import SweepRunner
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import JobRow
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)


# The scheduler's two reads, built once (they run every time a slot frees).
_RUNNING_LOCAL = select(
    JobSubmissionRow.workspace_id,
    JobSubmissionRow.cpus,
    JobSubmissionRow.memory_mb,
    JobSubmissionRow.gpus,
).where(JobSubmissionRow.compute == "local", JobSubmissionRow.state == "running")
# The queue as the policy needs it: within a workspace and priority jobs go oldest first, so
# the oldest few of each are all it can pick from; reading only those keeps a pass cheap
# however long the queue is (all 500 queued rows cost about 4 ms to read on SQLite).
HEADS_PER_GROUP = 8
_QUEUE_RANKED = (
    select(
        JobSubmissionRow.job_id,
        JobSubmissionRow.workspace_id,
        JobSubmissionRow.priority,
        JobSubmissionRow.queued_at,
        JobSubmissionRow.cpus,
        JobSubmissionRow.memory_mb,
        JobSubmissionRow.gpus,
        func.row_number()
        .over(
            partition_by=(JobSubmissionRow.workspace_id, JobSubmissionRow.priority),
            order_by=JobSubmissionRow.queued_at,
        )
        .label("place"),
    )
    .where(JobSubmissionRow.compute == "local", JobSubmissionRow.state == "queued")
    .subquery()
)
_QUEUED_LOCAL = (
    select(
        _QUEUE_RANKED.c.job_id,
        _QUEUE_RANKED.c.workspace_id,
        _QUEUE_RANKED.c.priority,
        _QUEUE_RANKED.c.queued_at,
        _QUEUE_RANKED.c.cpus,
        _QUEUE_RANKED.c.memory_mb,
        _QUEUE_RANKED.c.gpus,
    )
    .where(_QUEUE_RANKED.c.place <= HEADS_PER_GROUP)
    .order_by(_QUEUE_RANKED.c.queued_at)
)
# Jobs of other computes (Ray clusters) start as soon as they are queued: the cluster
# queues them itself, so no slots are counted here.
_QUEUED_ELSEWHERE = (
    select(JobSubmissionRow.job_id)
    .where(JobSubmissionRow.state == "queued", JobSubmissionRow.compute != "local")
    .order_by(JobSubmissionRow.priority.desc(), JobSubmissionRow.queued_at)
    .limit(100)
)


class Launcher(Protocol):
    """What the runner asks of a launcher once a job has started (the local one, Ray)."""

    def poll(self, handle: dict[str, Any]) -> Exit | None: ...

    def signal(self, handle: dict[str, Any], sig: signal.Signals) -> None: ...

    def usage(self, handle: dict[str, Any]) -> Usage | None: ...


@dataclass(frozen=True)
class RunnerSettings:
    jobs_dir: Path
    server_url: str
    capacity: LocalCapacity
    tick_seconds: float = 0.5
    kill_grace_seconds: float = 10.0
    metrics_interval_seconds: float = 15.0
    heartbeat_seconds: float = 10.0
    max_infra_retries: int = 2
    workers: int = 4
    # A running job whose runner has not reported for this long is NotResponding.
    not_responding_seconds: float = 60.0
    # Which runner holds a job: a restarted server takes back only its own.
    host: str = field(default_factory=socket.gethostname)


@dataclass
class _Running:
    job_id: str
    workspace: str
    handle: dict[str, Any]
    started: float  # time.monotonic()
    timeout_s: int | None
    memory_mb: int
    cpus: float
    term_sent: float | None = None
    reason: str | None = None  # why the runner stopped it (timeout, memory, cancel)
    final_status: str | None = None
    last_sample: float = 0.0
    last_cpu: float = 0.0
    samples: int = 0
    finalizing: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    # The environment held for the job while it runs (released when it is finalized).
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class JobRunner:
    def __init__(
        self,
        db: Database,
        settings: RunnerSettings,
        *,
        launcher: LocalLauncher,
        ray: RayLauncher | None = None,
        pipelines: PipelineRunner | None = None,
        users: JobUsers | None = None,
        containers: ContainerEngine | None = None,
        sweeps: SweepRunner | None = None,
        environments: EnvironmentProvider,
        resolver: DatastoreResolver,
        artifacts: ArtifactService,
        secrets: SecretService,
        runs: RunService,
        data: DataService,
        models: ModelAssetService,
    ) -> None:
        self.db = db
        self.settings = settings
        self.launcher = launcher
        self.ray = ray
        self.pipelines = pipelines
        self.users = users  # local jobs as their own user ids (compute/job_users.py)
        self.containers = containers  # runs jobs whose environment is an image
        # GPU use is read from the driver's tool, where there are GPUs to hand out.
        self.gpus = GpuSampler.find() if settings.capacity.gpus else None
        self.sweeps = sweeps
        self.outputs = JobOutputs(db, resolver, artifacts, data, models, settings.jobs_dir)
        self.preparer = JobPreparer(
            db,
            server_url=settings.server_url,
            gpus=settings.capacity.gpus,
            ray_available=ray is not None,
            environments=environments,
            resolver=resolver,
            outputs=self.outputs,
            secrets=secrets,
            users=users,
        )
        self.runs = runs
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="job")
        self._running: dict[str, _Running] = {}
        self._preparing: set[str] = set()
        self._lock = threading.Lock()
        self._schedule_lock = threading.Lock()
        # When each workspace last had a job started here: fair share takes turns by it.
        self._last_served: dict[str, datetime] = {}
        self._last_heartbeat = 0.0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; running jobs keep running (their supervisors outlive us)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=False)
        if self.ray is not None:
            self.ray.close()

    def wake(self) -> None:
        self._wake.set()

    def live_log(self, job_id: str) -> Path | None:
        """The log file of a job running on this host (None once it has been finalized)."""
        path = self.settings.jobs_dir / job_id / USER_LOG
        return path if path.exists() else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.tick_seconds)
            self._wake.clear()
            try:
                self._tick()
            except Exception:  # the loop must survive anything one job does
                log.exception("job runner tick failed")

    def _tick(self) -> None:
        now = time.monotonic()
        self._watch(now)
        if self.pipelines is not None:
            self.pipelines.advance()
        if self.sweeps is not None:
            self.sweeps.advance()
        self._schedule()
        if now - self._last_heartbeat >= self.settings.heartbeat_seconds:
            self._heartbeat()
            self._last_heartbeat = now

    # -- scheduling -------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Start what fits in the free capacity."""
        # The loop and a job that just ended may both schedule: one at a time, so free
        # capacity is never counted twice. (Lock order: schedule lock, then the database.)
        with self._schedule_lock:
            with self.db.write() as session:
                claimed = self._claim_next(session)
            self._start_claimed(claimed)

    def _claim_next(self, session: Session) -> list[str]:
        """Pick and claim, in the caller's transaction, the jobs that start now: every
        queued job of a Ray compute (the cluster queues them), and the local jobs that fit."""
        claimed = [
            job_id
            for job_id in session.scalars(_QUEUED_ELSEWHERE)
            if _claim(session, job_id, self.settings.host)
        ]
        capacity = self.settings.capacity
        running = session.execute(_RUNNING_LOCAL).all()
        free = Capacity(
            capacity.cpus - sum(r.cpus for r in running),
            max(capacity.memory_mb - sum(r.memory_mb for r in running), 1)
            if capacity.memory_mb
            else 0,
            capacity.gpus - sum(r.gpus for r in running),
        )
        if free.cpus <= 0:
            return claimed
        queue = [Candidate(*row) for row in session.execute(_QUEUED_LOCAL)]
        running_by_ws = Counter(r.workspace_id for r in running)
        now = utcnow()
        for job in pick(queue, free, running_by_ws, now, last_served=self._last_served):
            devices = self._free_devices(session, job) if job.gpus else None
            if _claim(session, job.job_id, self.settings.host, devices=devices):
                self._last_served[job.workspace_id] = now
                claimed.append(job.job_id)
        return claimed

    def _start_claimed(self, claimed: list[str]) -> None:
        """Prepare the claimed jobs on the workers (after their claims are committed)."""
        with self._lock:
            self._preparing.update(claimed)
        for job_id in claimed:
            self._pool.submit(self._prepare_and_launch, job_id)

    def _free_devices(self, session: Session, job: Candidate) -> list[int]:
        """GPU numbers for ``job``: of the local compute's, those no running job holds."""
        held = session.scalars(
            select(JobSubmissionRow.devices).where(
                JobSubmissionRow.compute == "local", JobSubmissionRow.state == "running"
            )
        )
        used = {int(device) for devices in held for device in devices}
        return [d for d in range(self.settings.capacity.gpus) if d not in used][: job.gpus]

    # -- prepare and launch -----------------------------------------------------------------

    def _prepare_and_launch(self, job_id: str) -> None:
        job_dir = self.settings.jobs_dir / job_id
        held = contextlib.ExitStack()  # the environment, held while the job runs
        try:
            self._launch(job_id, job_dir, held)
        except Exception as exc:
            held.close()
            infra = not isinstance(exc, ShipyardError)
            if infra:
                log.exception("preparing a job failed", extra={"job_id": job_id})
            reason = str(exc) if isinstance(exc, ShipyardError) else f"preparing failed: {exc}"
            append(job_dir / SYSTEM_LOG, f"error: {reason}\n")
            self._end_unlaunched(job_id, reason, retry=infra)
            self._wake.set()  # its slot is free again
        finally:
            with self._lock:
                self._preparing.discard(job_id)

    def _launch(self, job_id: str, job_dir: Path, held: contextlib.ExitStack) -> None:
        job = self.preparer.prepare(job_id, job_dir, held)
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the server is stopping")
        # The job's time (and cost) counts from its process's start, not from after the
        # write below, which may wait for the database's writer lock on a busy server.
        started = time.monotonic()
        handle = self._start(job)
        job.note("started")
        with self.db.write() as session:
            sub = session.get(JobSubmissionRow, job_id)
            row = session.get(JobRow, job_id)
            assert sub is not None
            assert row is not None
            sub.handle = {**handle, "host": self.settings.host}
            sub.started_at = utcnow()
            sub.heartbeat_at = sub.started_at
            if row.status != "CancelRequested":
                set_status(row, "Running", sub.started_at)
            timeout_s = sub.timeout_s
        run = _Running(
            job_id,
            job.workspace,
            handle,
            started,
            timeout_s,
            job.memory_mb,
            job.cpus,
            held=held,
        )
        run.info["devices"] = job.devices
        with self._lock:
            self._running[job_id] = run
        self._wake.set()

    def _start(self, job: PreparedJob) -> dict[str, Any]:
        """Start a prepared job on its compute; the handle to find it by again."""
        log_file = job.job_dir / USER_LOG
        if job.ray_job is not None:
            assert self.ray is not None  # the preparer refuses a Ray job without the launcher
            handle = self.ray.start(
                job.ray_job,
                job.command,
                job_dir=job.job_dir,
                cwd=job.wd,
                env=job.env,
                log_file=log_file,
                system_log=job.job_dir / SYSTEM_LOG,
                masked=job.masked,
                on_exit=self._wake.set,
            )
            job.note(
                f"submitted to the Ray cluster at {job.ray_job.address} as "
                f"{job.ray_job.submission_id}"
            )
            return handle
        if job.image is not None:
            assert self.containers is not None  # the builder had an engine for the image
            argv = self.containers.run_argv(
                job.job_id,
                job.image,
                job.command,
                job_dir=job.job_dir,
                workdir=job.wd,
                env=job.env,
                cpus=job.cpus,
                memory_mb=job.memory_mb,
                devices=job.devices,
                uid=job.uid,
            )
            self.containers.remove(job.job_id)  # one left by an earlier attempt
            handle = self.launcher.start(
                job.job_dir,
                argv,
                cwd=job.wd,
                env=self.containers.process_env(job.env),
                log_file=log_file,
                masked=job.masked,
                on_exit=self._wake.set,
            )
            job.note(f"running in image {job.image}")
            return {**handle, "container": True}
        return self.launcher.start(
            job.job_dir,
            ["/bin/bash", "-c", job.command],
            cwd=job.wd,
            env=job.env,
            log_file=log_file,
            masked=job.masked,
            on_exit=self._wake.set,
            uid=job.uid,
        )

    def _end_unlaunched(self, job_id: str, reason: str, *, retry: bool) -> None:
        with self.db.write() as session:
            sub = session.get(JobSubmissionRow, job_id)
            job = session.get(JobRow, job_id)
            if sub is None or job is None:
                return
            if job.status == "CancelRequested":
                set_status(job, "Canceled")
            elif retry and sub.attempt < self.settings.max_infra_retries:
                sub.attempt += 1
                sub.state = "queued"
                sub.error = reason
                set_status(job, "Queued")
                return
            else:
                set_status(job, "Failed")
                sub.error = reason
            sub.state = "done"
            sub.ended_at = utcnow()
            revoke_job_tokens(session, job_id)
        self.outputs.store_logs(job_id)

    # -- watching ---------------------------------------------------------------------------

    def _watch(self, now: float) -> None:
        with self._lock:
            running = [r for r in self._running.values() if not r.finalizing]
        if not running:
            return
        with self.db.read() as session:
            statuses = dict(
                session.execute(
                    select(JobRow.id, JobRow.status).where(
                        JobRow.id.in_([r.job_id for r in running])
                    )
                ).all()
            )
        for run in running:
            launcher = self._launcher(run.handle)
            ended = launcher.poll(run.handle)
            if ended is not None:
                run.finalizing = True
                self._pool.submit(self._finalize, run, ended)
                continue
            if statuses.get(run.job_id) == "CancelRequested" and run.reason is None:
                self._stop_job(run, now, "canceled on request", "Canceled")
            elif run.timeout_s and now - run.started >= run.timeout_s and run.reason is None:
                self._stop_job(
                    run,
                    now,
                    f"exceeded its time limit (limits.timeout = {run.timeout_s} s)",
                    "Canceled",
                )
            elif run.term_sent and now - run.term_sent >= self.settings.kill_grace_seconds:
                launcher.signal(run.handle, signal.SIGKILL)
            if now - run.last_sample >= min(self.settings.metrics_interval_seconds, 1.0):
                self._sample(run, now)

    def _launcher(self, handle: dict[str, Any]) -> Launcher:
        if handle.get("launcher") == "ray" and self.ray is not None:
            return self.ray
        return self.launcher

    def _stop_job(self, run: _Running, now: float, reason: str, status: str) -> None:
        run.reason, run.final_status, run.term_sent = reason, status, now
        self._launcher(run.handle).signal(run.handle, signal.SIGTERM)

    def _sample(self, run: _Running, now: float) -> None:
        usage = self._launcher(run.handle).usage(run.handle)
        if usage is None:
            return
        if run.memory_mb and usage.rss_bytes > run.memory_mb * MiB and run.reason is None:
            used = usage.rss_bytes // MiB
            self._stop_job(
                run,
                now,
                f"exceeded its memory limit of {run.memory_mb} MB (used {used} MB)",
                "Failed",
            )
            self._launcher(run.handle).signal(run.handle, signal.SIGKILL)  # memory: no wait
        elapsed = now - run.last_sample if run.last_sample else 0.0
        due = now - run.info.get("logged", 0.0) >= self.settings.metrics_interval_seconds
        if elapsed > 0 and due:
            devices = run.info.get("devices")
            gpu = self.gpus.sample(devices) if self.gpus is not None and devices else None
            metrics = usage_points(
                usage, cpu_seconds_before=run.last_cpu, elapsed=elapsed, step=run.samples, gpu=gpu
            )
            run.samples += 1
            run.info["logged"] = now
            with contextlib.suppress(ShipyardError):  # the run was deleted under the job
                self.runs.log(run.workspace, run.job_id, metrics=metrics)
        run.last_sample, run.last_cpu = now, usage.cpu_seconds

    def _heartbeat(self) -> None:
        """Say this runner's jobs are alive, and mark other runners' silent ones
        NotResponding (a runner that comes back sets its jobs Running again)."""
        with self._lock:
            ids = [*self._running, *self._preparing]
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.not_responding_seconds)
        with self.db.write() as session:
            if ids:
                session.execute(
                    update(JobSubmissionRow)
                    .where(JobSubmissionRow.job_id.in_(ids))
                    .values(heartbeat_at=now)
                )
                for job in session.scalars(
                    select(JobRow).where(JobRow.id.in_(ids), JobRow.status == "NotResponding")
                ):
                    set_status(job, "Running", now)
            silent = select(JobSubmissionRow.job_id).where(
                JobSubmissionRow.state == "running",
                JobSubmissionRow.heartbeat_at < stale,
                JobSubmissionRow.job_id.not_in(ids),
            )
            for job in session.scalars(
                select(JobRow).where(
                    JobRow.id.in_(silent),
                    JobRow.status.in_(("Preparing", "Running", "Finalizing", "CancelRequested")),
                )
            ):
                set_status(job, "NotResponding", now)

    # -- finalize ---------------------------------------------------------------------------

    def _finalize(self, run: _Running, ended: Exit) -> None:
        try:
            if ended.lost and run.final_status is None:
                # Nothing the job did ended it (the host or the cluster lost it): an
                # infrastructure failure, retried like one while attempts remain.
                _, reason = outcome(_stopped(run), ended)
                job_dir = self.settings.jobs_dir / run.job_id
                append(job_dir / SYSTEM_LOG, f"error: {reason}\n")
                self._end_unlaunched(run.job_id, reason or "the job was lost", retry=True)
                self._wake.set()
                return
            self._finish(run, ended)
            self._wake.set()  # a pipeline may have a step to start now
        except Exception:
            log.exception("finalizing a job failed", extra={"job_id": run.job_id})
            with self.db.write() as session:
                sub = session.get(JobSubmissionRow, run.job_id)
                job = session.get(JobRow, run.job_id)
                if sub is not None and job is not None and sub.state != "done":
                    set_status(job, "Failed")
                    sub.state, sub.ended_at = "done", utcnow()
                    sub.error = "finalizing the job failed; see the server log"
                    revoke_job_tokens(session, run.job_id)
            self._wake.set()  # the loop fills the slot the failed finish left
        finally:
            if run.handle.get("container") and self.containers is not None:
                self.containers.remove(run.job_id)  # lost or failed: nothing left running
            with self._lock:
                self._running.pop(run.job_id, None)
            run.held.close()  # the environment may be evicted again
            shutil.rmtree(self.settings.jobs_dir / run.job_id, ignore_errors=True)

    def _finish(self, run: _Running, ended: Exit) -> None:
        job_id = run.job_id
        with self.db.write() as session:
            job = session.get(JobRow, job_id)
            sub = session.get(JobSubmissionRow, job_id)
            assert job is not None
            assert sub is not None
            set_status(job, "Finalizing")
            spec = dict(sub.spec)
            principal = _principal(session, sub.created_by)
        stopped = _stopped(run)
        if run.handle.get("container") and self.containers is not None:
            # The kernel enforces an image job's memory: the engine says whether it did.
            if stopped is None:
                stopped = container_stop(self.containers, job_id, ended.exit_code, run.memory_mb)
            self.containers.remove(job_id)
        status, error = outcome(stopped, ended, self.settings.jobs_dir / job_id / USER_LOG)
        registered, problems = self.outputs.store(
            run.workspace,
            sub.workspace_id,
            job_id,
            spec,
            principal,
            completed=status == "Completed",
        )
        if problems and status == "Completed":
            status, error = "Failed", "; ".join(problems)
        self.outputs.store_logs(job_id)
        wall = time.monotonic() - run.started
        # The slot comes free in the same transaction that fills it: no wait for the loop.
        with self._schedule_lock:
            with self.db.write() as session:
                job = session.get(JobRow, job_id)
                sub = session.get(JobSubmissionRow, job_id)
                assert job is not None
                assert sub is not None
                end = JobEnd(status, error, ended.exit_code, wall, registered)
                record_end(
                    session, job, sub, end, local_rate=self.settings.capacity.cost_per_core_hour
                )
                claimed = self._claim_next(session)
            self._start_claimed(claimed)

    # -- restart ----------------------------------------------------------------------------

    def _recover(self) -> None:
        """Jobs this server was running when it stopped: re-attach, finalize or requeue."""
        with self.db.read() as session:
            rows = session.execute(
                select(JobSubmissionRow, JobRow.status, WorkspaceRow.name)
                .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
                .join(WorkspaceRow, WorkspaceRow.id == JobSubmissionRow.workspace_id)
                .where(JobSubmissionRow.state == "running")
            ).all()
        for sub, status, workspace in rows:
            if sub.handle.get("host", self.settings.host) != self.settings.host:
                continue  # another server's job: its runner takes it back
            if "pid" not in sub.handle and "submission_id" not in sub.handle:
                # It was preparing: nothing ran yet.
                self._end_unlaunched(
                    sub.job_id, "the server restarted while the job was preparing", retry=True
                )
                continue
            run = _Running(
                sub.job_id,
                workspace,
                dict(sub.handle),
                time.monotonic()
                - max((utcnow() - (sub.started_at or utcnow())).total_seconds(), 0.0),
                sub.timeout_s,
                sub.memory_mb,
                sub.cpus,
            )
            run.info["devices"] = list(sub.devices) if "pid" in sub.handle else []
            if self.users is not None and "uid" in sub.handle:
                self.users.adopt(int(sub.handle["uid"]), sub.job_id)
                run.held.callback(self.users.release, int(sub.handle["uid"]))
            with self._lock:
                self._running[sub.job_id] = run
            log.info("re-attached to a running job", extra={"job_id": sub.job_id, "status": status})


def _claim(session: Session, job_id: str, host: str, *, devices: list[int] | None = None) -> bool:
    """Take a queued job in ``session``'s transaction: Preparing, and its state "running"
    (an update only one runner can win, even with several servers on one database)."""
    job = session.get(JobRow, job_id)
    if job is None or job.status != "Queued":  # canceled between the pick and the claim
        return False
    # The host marks whose job it is while it prepares (a restarted server takes back only
    # its own).
    values: dict[str, Any] = {
        "state": "running",
        "heartbeat_at": utcnow(),
        "handle": {"host": host},
    }
    if devices is not None:
        values["devices"] = devices
    result = session.execute(
        update(JobSubmissionRow)
        .where(JobSubmissionRow.job_id == job_id, JobSubmissionRow.state == "queued")
        .values(**values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    set_status(job, "Preparing")
    return True


def _stopped(run: _Running) -> tuple[str, str | None] | None:
    """The status and reason the runner gave a job it ended itself, if it did."""
    return (run.final_status, run.reason) if run.final_status is not None else None


def _principal(session: Session, user_id: str) -> Principal:
    user = session.get(UserRow, user_id)
    return Principal(id=user_id, name=user.name if user else user_id, is_admin=False)
