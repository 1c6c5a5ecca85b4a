"""The deployment runtime: keeps one ``DeploymentSupervisor`` per online deployment row.

One thread reconciles the store with what runs, every ``poll_seconds`` and whenever woken
(a deployment or endpoint changed on this server): a new row is prepared
(``deployment_files``: environment, model, code, secrets) on a worker thread and started; a
new ``generation`` is prepared again and handed to ``update`` (the supervisor rolls the
instances one at a time), or, when only the instance count changed, to ``scale``; a row that
is gone is stopped. Everything is in the store, so a restarted server starts every
deployment's instances again.

The supervisors report on their own threads; ``on_change`` only records the latest status and
wakes the reporter thread, which writes it with ``report_state`` as Azure's provisioning state
(Creating, Updating, Succeeded, Failed) and the error (an ``init()`` traceback).

The same pass reads each endpoint's traffic split: ``routes`` is what the scoring gateway
routes by, and ``ready`` where a deployment's instances listen.

A deployment whose spec names a Ray compute (``spec["compute"]``) is run by a
``RayServeDeployment`` instead of a local supervisor: the same face, the same preparation
(its files are read on the cluster's node where they were prepared), and its ``ready`` is
Serve's HTTP proxy at the application's route prefix (serving/ray_serve_deployment.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shipyard.domain.endpoints import instance_part
from shipyard.services.deployment_files import (
    DeploymentPreparer,
    DeploymentRef,
    PreparationError,
    new_files_folder,
    remove_tree,
)
from shipyard.serving.instances import DeploymentSupervisor
from shipyard.serving.ray_serve_deployment import (
    RayServeDeployment,
    RayServeSettings,
    RayServeTarget,
)
from shipyard.serving.spec import (
    Address,
    DeploymentSpec,
    DeploymentState,
    DeploymentStatus,
    InstanceState,
    InstanceStatus,
    SupervisorSettings,
)
from shipyard.store.database import Database
from shipyard.store.endpoints import OnlineDeploymentRow, OnlineEndpointRow
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)

Report = Callable[..., bool]  # OnlineDeploymentService.report_state
FILES = "files"  # <work_dir>/<deployment id>/files/g<generation>-*/{model,code}
SCORE_PATH = b"/score"  # where a local instance takes requests


@dataclass(frozen=True)
class DeploymentRoute:
    id: str
    name: str
    request_timeout_ms: int


@dataclass(frozen=True)
class EndpointRoutes:
    """An endpoint's deployments, as the gateway routes to them."""

    endpoint_id: str
    deployments: dict[str, DeploymentRoute]  # by name
    traffic: tuple[tuple[DeploymentRoute, int], ...]  # live split, weights > 0
    mirror: tuple[DeploymentRoute, int] | None  # the mirrored deployment and its percent


@dataclass
class _Running:
    ref: DeploymentRef
    spec: DeploymentSpec
    supervisor: DeploymentSupervisor | RayServeDeployment
    files: Path
    held: contextlib.ExitStack
    # The files and environment holds of the revision before: a failed roll goes back to it.
    previous: list[tuple[Path, contextlib.ExitStack]] = field(default_factory=list)


class DeploymentRuntime:
    def __init__(
        self,
        db: Database,
        preparer: DeploymentPreparer,
        report: Report,
        *,
        work_dir: Path,
        poll_seconds: float = 1.0,
        supervisor: SupervisorSettings | None = None,
        serve: RayServeSettings | None = None,
        workers: int = 2,
    ) -> None:
        self.db = db
        self.preparer = preparer
        self.report = report
        self.work_dir = work_dir
        self.poll_seconds = poll_seconds
        self.settings = supervisor or SupervisorSettings(work_dir=work_dir)
        self.serve_settings = serve or RayServeSettings(work_dir=work_dir)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._running: dict[str, _Running] = {}
        self._pending: set[str] = set()  # being prepared or stopped on a worker
        self._given_up: dict[str, int] = {}  # id -> generation that could not be prepared
        self._routes: dict[tuple[str, str], EndpointRoutes] = {}
        self._swept = False
        self._ready: dict[str, list[Address]] = {}
        # Instances taking traffic (a Serve application has one address for all replicas).
        self._ready_count: dict[str, int] = {}
        self._statuses: dict[str, DeploymentStatus] = {}  # latest, not yet reported
        # Instance restarts since this server started them, and each instance's count as last
        # reported (monitoring: a counter that survives instances being replaced).
        self._restarts: dict[str, int] = {}
        self._instance_restarts: dict[str, dict[str, int]] = {}
        self._reported = threading.Condition()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="deploy-prepare")
        self._loop_thread = threading.Thread(target=self._loop, name="deployments", daemon=True)
        self._report_thread = threading.Thread(
            target=self._report_loop, name="deployment-reports", daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._loop_thread.start()
        self._report_thread.start()

    def wake(self) -> None:
        """Something changed: reconcile now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop every instance (they finish the requests they have) and the threads."""
        self._stopping.set()
        self._wake.set()
        if self._loop_thread.is_alive():
            self._loop_thread.join(30)
        # A preparation under way (an environment build) is not waited for: it sees the stop
        # and starts nothing.
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        stoppers = [threading.Thread(target=run.supervisor.stop, daemon=True) for run in running]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(60)
        for run in running:
            _release(run)
        with self._reported:
            self._reported.notify_all()
        if self._report_thread.is_alive():
            self._report_thread.join(10)

    # -- what the gateway reads ------------------------------------------------------------------

    def routes(self, workspace: str, endpoint: str) -> EndpointRoutes | None:
        return self._routes.get((workspace, endpoint))

    def ready(self, deployment_id: str) -> list[Address]:
        """Where the deployment's instances that take traffic listen, (host, port, path):
        as its supervisor last reported (a dict read: the gateway calls it on the event
        loop, and the supervisor's own lock is held while it starts processes)."""
        return self._ready.get(deployment_id, [])

    def deployments(self) -> list[tuple[str, str, DeploymentRoute]]:
        """(workspace, endpoint, deployment) of every deployment the last pass saw."""
        return [
            (workspace, endpoint, route)
            for (workspace, endpoint), routes in self._routes.items()
            for route in routes.deployments.values()
        ]

    def ready_instances(self, deployment_id: str) -> int:
        """How many of the deployment's instances (or Serve replicas) take traffic now."""
        return self._ready_count.get(deployment_id, 0)

    def restarts(self, deployment_id: str) -> int:
        """Instance restarts of the deployment since this server started it."""
        return self._restarts.get(deployment_id, 0)

    def status(self, deployment_id: str) -> DeploymentStatus | None:
        run = self._running.get(deployment_id)
        return run.supervisor.status() if run is not None else None

    # -- reconciling -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._reconcile()
            except Exception:  # a database hiccup must not end the runtime; the next pass retries
                log.exception("reconciling online deployments failed")
            self._wake.wait(self.poll_seconds)

    def _reconcile(self) -> None:
        refs, routes = _load(self.db)
        self._routes = routes
        if not self._swept:
            # Deployments deleted while no server ran: their folders go (files, logs).
            self._swept = True
            for folder in self.work_dir.iterdir():
                if folder.is_dir() and folder.name not in refs:
                    remove_tree(folder)
        with self._lock:
            for ref in refs.values():
                if ref.id in self._pending or self._given_up.get(ref.id) == ref.generation:
                    continue
                run = self._running.get(ref.id)
                if run is None:
                    self._submit(self._start, ref)
                elif run.ref.generation != ref.generation:
                    if _count_only(run.ref, ref):
                        self._scale(run, ref)
                    else:
                        self._submit(self._update, ref)
            for gone in [i for i in self._running if i not in refs and i not in self._pending]:
                self._submit(self._remove, self._running[gone].ref)
            for gone in [i for i in self._given_up if i not in refs]:
                del self._given_up[gone]
                remove_tree(self.work_dir / gone)  # its logs; no instance runs

    def _submit(self, work: Callable[[DeploymentRef], None], ref: DeploymentRef) -> None:
        self._pending.add(ref.id)

        def run() -> None:
            try:
                work(ref)
            except Exception:
                log.exception("online deployment %s: %s failed", ref.id, work.__name__)
            finally:
                with self._lock:
                    self._pending.discard(ref.id)
                self._wake.set()  # the row may have changed meanwhile

        try:
            self._pool.submit(run)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._pending.discard(ref.id)

    def _prepare(self, ref: DeploymentRef) -> tuple[DeploymentSpec, Path, contextlib.ExitStack]:
        files = new_files_folder(self.work_dir / ref.id / FILES, ref.generation)
        held = contextlib.ExitStack()
        try:
            spec = self.preparer.prepare(ref, files, held)
        except BaseException:
            held.close()
            remove_tree(files)
            raise
        return spec, files, held

    def _start(self, ref: DeploymentRef) -> None:
        # What an earlier run of the server left (it stopped, or was killed, meanwhile).
        remove_tree(self.work_dir / ref.id / FILES)
        try:
            spec, files, held = self._prepare(ref)
        except PreparationError as exc:
            self._give_up(ref, str(exc))
            return
        if self._stopping.is_set():
            held.close()
            return
        supervisor = self._supervisor(ref, spec)
        with self._lock:
            self._running[ref.id] = _Running(ref, spec, supervisor, files, held)
        supervisor.start()
        log.info("online deployment started", extra={"deployment": ref.id})

    def _supervisor(
        self, ref: DeploymentRef, spec: DeploymentSpec
    ) -> DeploymentSupervisor | RayServeDeployment:
        compute = ref.spec.get("compute")
        if not compute:
            return DeploymentSupervisor(
                spec, self.settings, on_change=lambda status: self._changed(ref.id, status)
            )
        target = RayServeTarget(compute=str(compute["name"]), address=str(compute["address"]))
        return RayServeDeployment(
            spec,
            target,
            self.serve_settings,
            on_change=lambda status: self._changed(ref.id, status),
        )

    def _update(self, ref: DeploymentRef) -> None:
        try:
            spec, files, held = self._prepare(ref)
        except PreparationError as exc:
            self._give_up(ref, str(exc))
            return
        with self._lock:
            run = self._running.get(ref.id)
            if run is None or self._stopping.is_set():
                held.close()
                remove_tree(files)
                return
            for old_files, old_held in run.previous:  # older than the revision before
                old_held.close()
                remove_tree(old_files)
            run.previous = [(run.files, run.held)]
            run.ref, run.spec, run.files, run.held = ref, spec, files, held
        run.supervisor.update(spec)
        self._changed(ref.id, run.supervisor.status())

    def _scale(self, run: _Running, ref: DeploymentRef) -> None:
        run.spec = replace(run.spec, instance_count=int(ref.spec.get("instance_count") or 1))
        run.ref = ref
        run.supervisor.update(run.spec)
        self._changed(ref.id, run.supervisor.status())

    def _remove(self, ref: DeploymentRef) -> None:
        with self._lock:
            run = self._running.get(ref.id)
        if run is not None:
            run.supervisor.stop()
            with self._lock:
                self._running.pop(ref.id, None)
            _release(run)
        self._ready.pop(ref.id, None)
        self._ready_count.pop(ref.id, None)
        self._restarts.pop(ref.id, None)
        self._instance_restarts.pop(ref.id, None)
        remove_tree(self.work_dir / ref.id)
        log.info("online deployment stopped", extra={"deployment": ref.id})

    def _give_up(self, ref: DeploymentRef, error: str) -> None:
        with self._lock:
            self._given_up[ref.id] = ref.generation
        self.report(
            ref.id,
            provisioning_state="Failed",
            error=error,
            generation=ref.generation,
        )

    # -- reporting -------------------------------------------------------------------------------

    def _changed(self, deployment_id: str, status: DeploymentStatus) -> None:
        """Called on a supervisor's thread: only hand the status over. An instance leaves
        the ready list here at once; the supervisor stops it only ``drain_seconds`` later.
        A Serve application takes requests at Serve's proxy, not one port per instance."""
        run = self._running.get(deployment_id)
        if run is not None and isinstance(run.supervisor, RayServeDeployment):
            self._ready[deployment_id] = run.supervisor.ready()
        else:
            self._ready[deployment_id] = [
                ("127.0.0.1", i.port, SCORE_PATH)
                for i in status.instances
                if i.state is InstanceState.READY and i.port is not None
            ]
        self._ready_count[deployment_id] = sum(
            1 for i in status.instances if i.state is InstanceState.READY
        )
        self._count_restarts(deployment_id, status)
        with self._reported:
            self._statuses[deployment_id] = status
            self._reported.notify_all()

    def _count_restarts(self, deployment_id: str, status: DeploymentStatus) -> None:
        """Only this deployment's supervisor thread calls it: no lock."""
        before = self._instance_restarts.get(deployment_id, {})
        added = sum(max(0, i.restarts - before.get(i.id, 0)) for i in status.instances)
        self._instance_restarts[deployment_id] = {i.id: i.restarts for i in status.instances}
        if added:
            self._restarts[deployment_id] = self._restarts.get(deployment_id, 0) + added

    def _report_loop(self) -> None:
        while True:
            with self._reported:
                while not self._statuses and not self._stopping.is_set():
                    self._reported.wait(1.0)
                if not self._statuses and self._stopping.is_set():
                    return
                statuses, self._statuses = self._statuses, {}
            for deployment_id, status in statuses.items():
                try:
                    self._write(deployment_id, status)
                except Exception:  # the next change is reported again
                    log.exception("recording deployment %s's state failed", deployment_id)

    def _write(self, deployment_id: str, status: DeploymentStatus) -> None:
        run = self._running.get(deployment_id)
        if run is None or status.state is DeploymentState.STOPPED:
            return
        self.report(
            deployment_id,
            provisioning_state=_provisioning_state(status, run.ref.generation),
            instances=[_instance(i) for i in status.instances],
            error=_error(status),
            generation=run.ref.generation,
        )


def _load(db: Database) -> tuple[dict[str, DeploymentRef], dict[tuple[str, str], EndpointRoutes]]:
    """Every deployment of a live workspace, and every endpoint's routes."""
    query = (
        select(OnlineDeploymentRow, OnlineEndpointRow, WorkspaceRow.name)
        .join(OnlineEndpointRow, OnlineEndpointRow.id == OnlineDeploymentRow.endpoint_id)
        .join(WorkspaceRow, WorkspaceRow.id == OnlineEndpointRow.workspace_id)
        .where(WorkspaceRow.deleted_at.is_(None))
    )
    refs: dict[str, DeploymentRef] = {}
    endpoints: dict[str, tuple[str, OnlineEndpointRow]] = {}
    by_endpoint: dict[str, dict[str, DeploymentRoute]] = {}
    with db.read() as session:
        for row, endpoint, workspace in session.execute(query):
            refs[row.id] = DeploymentRef(
                id=row.id,
                workspace_id=endpoint.workspace_id,
                workspace=workspace,
                endpoint=endpoint.name,
                name=row.name,
                generation=row.generation,
                spec=dict(row.spec),
                code_digest=row.code_digest,
            )
            endpoints[endpoint.id] = (workspace, endpoint)
            timeout = int(
                (row.spec.get("request_settings") or {}).get("request_timeout_ms") or 5000
            )
            by_endpoint.setdefault(endpoint.id, {})[row.name] = DeploymentRoute(
                row.id, row.name, timeout
            )
        routes = {
            (workspace, endpoint.name): _routes(endpoint, by_endpoint[endpoint.id])
            for workspace, endpoint in endpoints.values()
        }
    return refs, routes


def _routes(endpoint: OnlineEndpointRow, deployments: dict[str, DeploymentRoute]) -> EndpointRoutes:
    traffic = tuple(
        (deployments[name], int(weight))
        for name, weight in sorted((endpoint.traffic or {}).items())
        if name in deployments and int(weight) > 0
    )
    mirror = next(
        (
            (deployments[name], int(share))
            for name, share in (endpoint.mirror_traffic or {}).items()
            if name in deployments and int(share) > 0
        ),
        None,
    )
    return EndpointRoutes(endpoint.id, deployments, traffic, mirror)


_COUNT = ("instance_count",)


def _count_only(old: DeploymentRef, new: DeploymentRef) -> bool:
    """True when what the instances run changed in its instance count alone."""
    same = instance_part(old.spec, ignoring=_COUNT) == instance_part(new.spec, ignoring=_COUNT)
    return same and old.code_digest == new.code_digest


def _provisioning_state(status: DeploymentStatus, generation: int) -> str:
    if status.state is DeploymentState.FAILED:
        return "Failed"
    if status.state is DeploymentState.UPDATING:
        return "Updating"
    if status.state is DeploymentState.STARTING:
        return "Creating" if generation == 1 else "Updating"
    return "Succeeded"  # Ready, or Degraded: it serves while crashed instances restart


def _error(status: DeploymentStatus) -> str | None:
    if status.error:
        return status.error
    if status.state in (DeploymentState.READY, DeploymentState.UPDATING):
        return None
    return next((i.error for i in status.instances if i.error), None)


def _instance(instance: InstanceStatus) -> dict[str, Any]:
    return {
        "id": instance.id,
        "revision": instance.revision,
        "state": str(instance.state),
        "pid": instance.pid,
        "port": instance.port,
        "restarts": instance.restarts,
        "error": instance.error,
    }


def _release(run: _Running) -> None:
    for files, held in [*run.previous, (run.files, run.held)]:
        held.close()
        remove_tree(files)
