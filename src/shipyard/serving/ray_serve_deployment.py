"""One online deployment on a Ray cluster, as a Ray Serve application: the server's side.

``RayServeDeployment`` has the local ``DeploymentSupervisor``'s face (``start``, ``status``,
``update``, ``stop``, ``on_change``) for the deployment runtime, and ``ready`` for the
gateway: where Serve's HTTP proxy takes the application's requests. The application is named
``shipyard-<deployment id>`` and answers at ``/shipyard/<deployment id>``; each
deployment's replicas run ``ray_serve.py``'s ``ScoringReplica`` (see there for why a short
Ray job deploys it, and what the replica assumes about files).

Everything goes over the dashboard's HTTP API (no ``ray`` import in the server): jobs are
submitted to ``/api/jobs/``, and a thread polls ``/api/serve/applications/`` every
``poll_interval`` and turns the application into a ``DeploymentStatus``: ``DEPLOYING`` is
Starting (Updating after a change), ``RUNNING`` Ready, ``UNHEALTHY`` Degraded and
``DEPLOY_FAILED`` Failed with Serve's message, which carries the traceback of the replica's
constructor (``init()``). A deploy job that fails is Failed with the job's log.
``update`` (a new revision or another replica count) deploys again: Serve rolls the
replicas. ``stop`` deletes the application (a stopped server stops its deployments, as it
stops local instances; their files go with them).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from shipyard.serving.spec import (
    Address,
    DeploymentSpec,
    DeploymentState,
    DeploymentStatus,
    InstanceState,
    InstanceStatus,
)

log = logging.getLogger(__name__)

SERVE_SIDE = Path(__file__).with_name("ray_serve.py")
SCORING_SERVER = Path(__file__).with_name("scoring_server.py")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACEBACK = "Traceback (most recent call last):"
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
#: Where a Serve replica is starting (or moving); RUNNING is the only state taking traffic.
_STOPPING = frozenset({"STOPPING"})


@dataclass(frozen=True)
class RayServeTarget:
    """The Ray cluster a deployment runs on: its compute's name and dashboard address."""

    compute: str
    address: str


@dataclass(frozen=True)
class RayServeSettings:
    work_dir: Path  # <work_dir>/<deployment>/serve/ (job configs), .../logs/serve.log
    python: str = sys.executable  # runs the deploy and delete jobs, where the node has it
    http_port: int = 8000  # Serve's HTTP proxy, when this server is the one to start Serve
    num_cpus: float = 1.0  # per replica (Serve's own default)
    poll_interval: float = 1.0
    request_timeout: float = 10.0  # one call to the dashboard
    stop_timeout: float = 60.0  # waiting for a deleted application to be gone
    #: An application missing from a cluster that had it (restarted) is deployed again at
    #: most this often.
    redeploy_after: float = 30.0
    #: How often each running replica's output is copied from the cluster into the
    #: deployment's logs, and how many of its last lines.
    log_interval: float = 5.0
    log_lines: int = 1000


def app_name(deployment_id: str) -> str:
    return f"shipyard-{deployment_id}"


def route_prefix(deployment_id: str) -> str:
    return f"/shipyard/{deployment_id}"


class RayServeDeployment:
    def __init__(
        self,
        spec: DeploymentSpec,
        target: RayServeTarget,
        settings: RayServeSettings,
        *,
        on_change: Callable[[DeploymentStatus], None] = lambda status: None,
    ) -> None:
        self.spec = spec
        self.target = target
        self.settings = settings
        self.on_change = on_change
        self.app = app_name(spec.name)
        self.prefix = route_prefix(spec.name)
        self.folder = settings.work_dir / spec.name
        self.log_file = self.folder / "logs" / "serve.log"
        self._host = urlsplit(target.address).hostname or "127.0.0.1"
        self._http = httpx.Client(base_url=target.address, timeout=settings.request_timeout)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._revision = 0
        self._job: str | None = None  # the deploy job in flight
        self._job_error: str | None = None  # the last deploy job failed: why
        self._unsent = False  # the cluster did not take the last deploy job: tried again
        self._deployed_at = 0.0
        self._ever_ready = False
        self._proxy_port: int | None = None  # where Serve's proxies listen, as Serve says
        self._status = self._make_status(DeploymentState.STARTING, error=None, replicas=[])
        self._ready: list[Address] = []
        self._thread = threading.Thread(target=self._follow, name=f"serve-{spec.name}", daemon=True)

    # -- the supervisor's face -------------------------------------------------------------------

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._deploy(self.spec)
        self._thread.start()

    def status(self) -> DeploymentStatus:
        return self._status

    def ready(self) -> list[Address]:
        """Where the application takes requests: Serve's proxy, at its route prefix, once a
        replica runs."""
        return self._ready

    def update(self, spec: DeploymentSpec) -> None:
        """A new revision, or only another number of replicas: deployed again, Serve rolls."""
        with self._lock:
            self.spec = spec
        self._deploy(spec)
        self._wake.set()

    def stop(self) -> None:
        """Delete the application and wait (``stop_timeout``) until Serve has let it go."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.settings.stop_timeout)
        self._ready = []
        try:
            self._submit("delete", {"app": self.app})
            deadline = time.monotonic() + self.settings.stop_timeout
            while time.monotonic() < deadline and self._application() is not None:
                time.sleep(self.settings.poll_interval / 2)
        except (httpx.HTTPError, ValueError) as exc:
            self._note(f"deleting Serve application {self.app} failed: {exc}")
        finally:
            self._http.close()
        self._status = self._make_status(DeploymentState.STOPPED, error=None, replicas=[])
        self.on_change(self._status)

    # -- deploying -------------------------------------------------------------------------------

    def _deploy(self, spec: DeploymentSpec) -> None:
        with self._lock:
            self._revision += 1
            self._job_error = None
            self._unsent = False
        try:
            job = self._submit("deploy", self._config(spec))
        except (httpx.HTTPError, ValueError) as exc:
            job = None
            error = (
                f"submitting the deployment to the Ray cluster at {self.target.address} "
                f"failed: {exc}"
            )
            self._note(f"{error} (trying again in {self.settings.redeploy_after:g} s)")
            with self._lock:
                self._job_error, self._unsent = error, True
        with self._lock:
            self._job = job
            self._deployed_at = time.monotonic()

    def _config(self, spec: DeploymentSpec) -> dict[str, Any]:
        return {
            "app": self.app,
            "route_prefix": self.prefix,
            # The proxy binds the interface the dashboard answers on when that is loopback
            # (a cluster on the server's host), else every interface, for the gateway.
            "http_host": "127.0.0.1" if _loopback(self._host) else "0.0.0.0",  # noqa: S104
            "http_port": self.settings.http_port,
            "num_replicas": spec.instance_count,
            "max_ongoing_requests": spec.max_concurrent_requests,
            # One request waits for each replica at the proxy; more are refused (the gateway
            # answers 429), as a busy local instance refuses what it cannot take at once.
            "max_queued_requests": spec.instance_count,
            "num_cpus": self.settings.num_cpus,
            "scoring_server": str(SCORING_SERVER),
            "site_packages": _site_packages(spec.python),
            "environment": dict(spec.environment_variables),
            "scorer": {
                "model_dir": str(spec.model_dir),
                "code_dir": str(spec.code_dir) if spec.code_dir else None,
                "scoring_script": spec.scoring_script,
                "mlflow_model": spec.mlflow_model,
                "request_timeout_ms": spec.request_timeout_ms,
                "max_concurrent_requests": spec.max_concurrent_requests,
            },
        }

    def _submit(self, action: str, config: dict[str, Any]) -> str:
        """A Ray job running ``ray_serve.py <action>``; its submission id. The config goes in
        a file only the server's user reads (it holds revealed secrets); the job removes it."""
        submission = f"{self.app}-{action}-{secrets.token_hex(4)}"
        folder = self.folder / "serve"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{submission}.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(config, out)
        python, script = self.settings.python, str(SERVE_SIDE)
        run = shlex.join([python, "-I", script, action, str(path)])
        bare = shlex.join(["python3", "-I", script, action, str(path)])
        entrypoint = f"if [ -x {shlex.quote(python)} ]; then exec {run}; fi; exec {bare}"
        answer = self._http.post(
            "/api/jobs/",
            json={
                "entrypoint": entrypoint,
                "submission_id": submission,
                "metadata": {"shipyard_deployment": self.spec.name},
            },
        )
        if answer.status_code != 200:
            path.unlink(missing_ok=True)
            raise ValueError(f"HTTP {answer.status_code}: {answer.text[:500]}")
        self._note(f"submitted Ray job {submission} ({action})")
        return submission

    # -- following -------------------------------------------------------------------------------

    def _follow(self) -> None:
        failing = False
        copied = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._check_job()
                application = self._application()
                failing = False
                self._observe(application)
                if time.monotonic() - copied >= self.settings.log_interval:
                    copied = time.monotonic()
                    self._copy_logs(_replicas(application))
            except (httpx.HTTPError, ValueError) as exc:
                if not failing:  # once per outage
                    self._note(f"the Ray cluster at {self.target.address} does not answer: {exc}")
                failing = True
            self._wake.wait(self.settings.poll_interval)

    def _copy_logs(self, replicas: list[dict[str, Any]]) -> None:
        """Each running replica's output (what ``run()`` prints, the tracebacks behind error
        ids) from Ray's log API into ``logs/replica-<id>.log``, secrets masked; a replica
        that is gone keeps the last copy."""
        for replica in replicas:
            actor, name = replica.get("actor_id"), replica.get("replica_id")
            if replica.get("state") != "RUNNING" or not actor or not name:
                continue
            text = []
            for suffix in ("out", "err"):
                answer = self._http.get(
                    "/api/v0/logs/file",
                    params={
                        "actor_id": actor,
                        "suffix": suffix,
                        "lines": self.settings.log_lines,
                        "filter_ansi_code": "true",
                    },
                )
                if answer.status_code == 200:
                    text.append(answer.text)
            target = self.log_file.with_name(f"replica-{_safe(str(name))}.log")
            content = self._masked("".join(text)) or ""
            try:
                if not target.exists() or target.read_text(errors="replace") != content:
                    target.write_text(content)
            except OSError:  # the folder went with a removed deployment
                return

    def _check_job(self) -> None:
        with self._lock:
            job = self._job
        if job is None:
            return
        info = self._http.get(f"/api/jobs/{job}")
        info.raise_for_status()
        status = str(info.json().get("status"))
        if status not in _TERMINAL:
            return
        logs = self._http.get(f"/api/jobs/{job}/logs").json().get("logs", "")
        self._note(f"Ray job {job} {status.lower()}:\n{_ANSI.sub('', str(logs)).rstrip()}")
        with self._lock:
            if self._job != job:  # another deploy was submitted meanwhile
                return
            self._job = None
            if status != "SUCCEEDED":
                tail = _ANSI.sub("", "\n".join(str(logs).rstrip().splitlines()[-30:]))
                self._job_error = (
                    f"deploying Serve application {self.app} on compute "
                    f"{self.target.compute!r} failed ({status}):\n{tail}"
                )

    def _application(self) -> dict[str, Any] | None:
        answer = self._http.get("/api/serve/applications/")
        answer.raise_for_status()
        body = answer.json()
        self._proxy_port = int((body.get("http_options") or {}).get("port") or 0) or None
        found = (body.get("applications") or {}).get(self.app)
        return found if isinstance(found, dict) else None

    def _observe(self, application: dict[str, Any] | None) -> None:
        with self._lock:
            in_flight, job_error = self._job is not None, self._job_error
            unsent = self._unsent
            since = time.monotonic() - self._deployed_at
        gone = application is None and not in_flight and job_error is None
        if (gone or unsent) and since > self.settings.redeploy_after:
            if gone:
                self._note(f"Serve application {self.app} is gone from the cluster: deploying it")
            self._deploy(self.spec)
            return
        state, error = self._state(application, in_flight, job_error)
        replicas = _replicas(application)
        running = sum(1 for r in replicas if r.get("state") == "RUNNING")
        port = self._proxy_port or self.settings.http_port
        self._ready = [(self._host, port, self.prefix.encode())] if running else []
        if state is DeploymentState.READY:
            self._ever_ready = True
        status = self._make_status(state, error=self._masked(error), replicas=replicas)
        if status != self._status:
            if status.state != self._status.state:
                self._note(f"state {status.state}" + (f": {status.error}" if status.error else ""))
            self._status = status
            self.on_change(status)

    def _state(
        self, application: dict[str, Any] | None, in_flight: bool, job_error: str | None
    ) -> tuple[DeploymentState, str | None]:
        waiting = DeploymentState.UPDATING if self._ever_ready else DeploymentState.STARTING
        if job_error is not None:
            return DeploymentState.FAILED, job_error
        if application is None or in_flight:
            # Until the deploy job has handed the new config to Serve, the application Serve
            # shows is the revision before.
            return waiting, None
        serve_state = str(application.get("status"))
        if serve_state == "RUNNING":
            return DeploymentState.READY, None
        if serve_state == "DEPLOY_FAILED":
            return DeploymentState.FAILED, _failure(application)
        if serve_state == "UNHEALTHY":
            return DeploymentState.DEGRADED, _failure(application)
        return waiting, None

    def _make_status(
        self, state: DeploymentState, *, error: str | None, replicas: list[dict[str, Any]]
    ) -> DeploymentStatus:
        instances = tuple(
            InstanceStatus(
                id=str(r.get("replica_id")),
                revision=self._revision,
                state=_instance_state(str(r.get("state"))),
                pid=r.get("pid") if isinstance(r.get("pid"), int) else None,
                port=None,
                restarts=0,
                error=None,
                log_file=self.log_file,
            )
            for r in replicas
        )
        return DeploymentStatus(
            name=self.spec.name,
            state=state,
            revision=self._revision,
            instance_count=self.spec.instance_count,
            ready_count=sum(1 for i in instances if i.state is InstanceState.READY),
            error=error,
            instances=instances,
        )

    def _masked(self, text: str | None) -> str | None:
        if text is None:
            return None
        for value in self.spec.masked:
            if value:
                text = text.replace(value, "***")
        return text

    def _note(self, line: str) -> None:
        """A line of the deployment's log (what ``get-logs`` shows), secrets masked."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = self._masked(f"{stamp} shipyard: {line}\n") or ""
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "a", encoding="utf-8") as out:
                out.write(text)
        except OSError:  # the folder went with a removed deployment
            log.warning("writing the Serve deployment's log failed", extra={"app": self.app})


def _replicas(application: dict[str, Any] | None) -> list[dict[str, Any]]:
    if application is None:
        return []
    deployments = application.get("deployments") or {}
    return [
        replica
        for deployment in deployments.values()
        for replica in (deployment.get("replicas") or [])
        if isinstance(replica, dict)
    ]


def _instance_state(serve_state: str) -> InstanceState:
    if serve_state == "RUNNING":
        return InstanceState.READY
    if serve_state in _STOPPING:
        return InstanceState.STOPPING
    return InstanceState.STARTING


def _failure(application: dict[str, Any]) -> str:
    """What Serve says went wrong: the application's message, and each unhealthy
    deployment's. A replica whose constructor raised comes with Serve's wrappers around the
    traceback; only the innermost traceback is kept (it ends in the user's ``init()``)."""
    parts = [str(application.get("message") or "").strip()]
    for deployment in (application.get("deployments") or {}).values():
        message = _ANSI.sub("", str(deployment.get("message") or "").strip())
        if message and deployment.get("status") not in ("HEALTHY", "UPDATING"):
            start = message.rfind(_TRACEBACK)
            if start > 0:
                message = f"{message.splitlines()[0]}\n{message[start:]}"
            parts.append(message)
    return _ANSI.sub("", "\n".join(part for part in parts if part))


def _site_packages(python: Path) -> str | None:
    """The environment's ``site-packages`` (``<env>/bin/python`` -> ``<env>/lib/pythonX.Y``)."""
    found = sorted((python.parent.parent / "lib").glob("python3.*/site-packages"))
    return str(found[0]) if found else None


def _safe(name: str) -> str:
    """A replica id as part of a file name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
