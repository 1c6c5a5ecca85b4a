"""What the instance supervisor is given (a deployment's runtime spec, its own settings) and
what it reports (the state of the deployment and of each instance)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

#: Where the gateway posts a deployment's requests: (host, port, path), a local instance's
#: ``/score`` or a Ray Serve application's route.
Address = tuple[str, int, bytes]


@dataclass(frozen=True)
class Probe:
    """Azure's probe settings (seconds): an instance failing ``failure_threshold`` probes in
    a row is restarted (liveness) or taken out of traffic until one succeeds (readiness)."""

    initial_delay: float = 10.0
    period: float = 10.0
    timeout: float = 2.0
    failure_threshold: int = 3


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as its instances run it: files and interpreter are already resolved
    (the model downloaded, the environment built, secrets revealed)."""

    name: str
    python: Path  # the environment's interpreter
    model_dir: Path  # AZUREML_MODEL_DIR
    code_dir: Path | None = None
    scoring_script: str | None = None  # relative to code_dir
    mlflow_model: bool = False  # no code: serve the MLflow model in model_dir through pyfunc
    instance_count: int = 1
    request_timeout_ms: int = 5000
    max_concurrent_requests: int = 1
    max_body_bytes: int = 100 * 1024 * 1024
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    masked: tuple[str, ...] = ()  # values to hide in the instance logs (revealed secrets)
    liveness_probe: Probe = Probe()
    readiness_probe: Probe = Probe()
    #: Longest time ``init()`` may take before the start counts as failed.
    start_timeout_seconds: float = 300.0

    def same_runtime(self, other: DeploymentSpec) -> bool:
        """True when ``other`` differs at most in its instance count (a scale, not a roll)."""
        return replace(self, instance_count=other.instance_count) == other


class UserPool(Protocol):
    """Unprivileged user ids to run instance processes as (``compute.job_users.JobUsers``,
    shared with local jobs): ``take`` raises an error saying why (``no_free_job_user``) when
    none is free; ``release`` kills whatever still runs as the id, then frees it."""

    def take(self, owner: str, /) -> int: ...

    def release(self, uid: int, /) -> None: ...


@dataclass(frozen=True)
class SupervisorSettings:
    """How the supervisor behaves, the same for every deployment it runs."""

    work_dir: Path  # configs, status files and logs go under <work_dir>/<deployment>/
    poll_interval: float = 0.05
    #: Time between taking an instance out of the ready list and sending it SIGTERM, so a
    #: router that read the list just before sends nothing to a closed port.
    drain_seconds: float = 0.5
    stop_grace_seconds: float = 10.0  # SIGTERM, then SIGKILL to the process group
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: A crash after this long ready starts the backoff from the beginning again.
    stable_seconds: float = 30.0
    #: Failed starts of a revision that never got ready before it is given up (Failed, or an
    #: update rolled back).
    max_start_failures: int = 3
    log_tail_lines: int = 40  # lines of the log an error message of a crashed start carries
    #: With a pool (``local_compute_uids``, the server running as root), every start of an
    #: instance runs as an id of its own, so the user's code cannot read the server's data
    #: folder (master key, database) nor another process's environment.
    users: UserPool | None = None


class InstanceState(enum.StrEnum):
    STARTING = "Starting"  # the process runs init()
    READY = "Ready"  # takes traffic
    UNREADY = "Unready"  # running, but its readiness probe fails: no traffic
    RESTARTING = "Restarting"  # it ended; waits out its backoff
    STOPPING = "Stopping"  # out of traffic, being stopped


class DeploymentState(enum.StrEnum):
    STARTING = "Starting"  # first start: not yet all instances ready
    READY = "Ready"  # all instances of the current revision ready
    DEGRADED = "Degraded"  # some instances down (crashed, restarting)
    UPDATING = "Updating"  # rolling to a new revision
    FAILED = "Failed"  # the revision never got ready: no instance runs
    STOPPED = "Stopped"


@dataclass(frozen=True)
class InstanceStatus:
    id: str
    revision: int
    state: InstanceState
    pid: int | None
    port: int | None
    restarts: int
    error: str | None  # the last failure: init()'s traceback, or how the process ended
    log_file: Path


@dataclass(frozen=True)
class DeploymentStatus:
    name: str
    state: DeploymentState
    revision: int
    instance_count: int
    ready_count: int
    #: Why the deployment failed, or why the last update was rolled back.
    error: str | None
    instances: tuple[InstanceStatus, ...]
