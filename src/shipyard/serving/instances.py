"""The instance supervisor: keeps N scoring processes of one deployment healthy.

It runs in the server process and never loads the model or the user's code; each instance is
its own process (``process.py``, ``scoring_server.py``). Callers state what they want
(``update`` a spec, ``scale`` to a count, ``stop``); one monitor thread converges on it, tick
by tick, so starting, restarting, rolling and retiring never race each other:

- an instance is started, and is Ready once its status file says ``init()`` succeeded;
  ``init()`` raising shows its traceback in the instance's ``error`` at once;
- an instance that ends on its own is restarted after a backoff that doubles per failure;
- a revision (spec) that fails ``max_start_failures`` starts without ever getting ready is
  given up: the deployment is Failed with the last error (no instance of it ever took
  traffic), or, during an update, the update is rolled back to the last revision that was
  ready;
- a new revision rolls one instance at a time: start a new one, wait until it is ready, then
  retire an old one. Retiring takes the instance out of ``endpoints()`` first, waits
  ``drain_seconds``, then sends SIGTERM (the server finishes what it has in flight) and
  SIGKILL after ``stop_grace_seconds``.

``endpoints()`` is what a router reads: the addresses of the instances that take traffic.
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard.serving.probes import ProbeRunner
from shipyard.serving.process import INIT_FAILED_EXIT, InstanceProcess, NoUserError
from shipyard.serving.spec import (
    DeploymentSpec,
    DeploymentState,
    DeploymentStatus,
    InstanceState,
    InstanceStatus,
    SupervisorSettings,
)

logger = logging.getLogger(__name__)

OnChange = Callable[[DeploymentStatus], None]
ROUTED = (InstanceState.READY,)


@dataclass
class _Instance:
    id: str
    revision: int
    log_file: Path
    state: InstanceState = InstanceState.STARTING
    process: InstanceProcess | None = None
    port: int | None = None
    restarts: int = 0
    failures: int = 0  # consecutive failures, for the backoff
    error: str | None = None
    started_at: float = 0.0
    ready_at: float | None = None
    next_start: float = 0.0  # Restarting: when to start again
    term_at: float = 0.0  # Stopping: when SIGTERM goes
    kill_at: float = 0.0  # Stopping: when SIGKILL goes
    termed: bool = False
    killed_because: str | None = None  # the supervisor killed it (probe, start timeout)

    def status(self) -> InstanceStatus:
        return InstanceStatus(
            id=self.id,
            revision=self.revision,
            state=self.state,
            pid=self.process.pid if self.process is not None else None,
            port=self.port,
            restarts=self.restarts,
            error=self.error,
            log_file=self.log_file,
        )


class DeploymentSupervisor:
    """The instances of one deployment. Methods are safe to call from any thread."""

    def __init__(
        self,
        spec: DeploymentSpec,
        settings: SupervisorSettings,
        on_change: OnChange | None = None,
    ) -> None:
        """``on_change`` gets every new status, on the monitor thread: keep it quick (hand
        the status over to whatever stores it)."""
        self.settings = settings
        self.folder = settings.work_dir / spec.name
        self.folder.mkdir(parents=True, exist_ok=True)
        # Instances (as job users) enter their own folders here, and list nothing; the logs
        # are the server's alone.
        self.folder.chmod(0o711)
        (self.folder / "logs").mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Condition()
        self._specs: dict[int, DeploymentSpec] = {1: spec}
        self._revision = 1  # the revision instances should run
        self._stable: int | None = None  # the last revision that had all its instances ready
        self._ever_ready: set[int] = set()
        self._start_failures: dict[int, int] = {}
        self._count = spec.instance_count
        self._instances: list[_Instance] = []
        self._ids = itertools.count()
        self._failed = False
        self._error: str | None = None
        self._stopping = False
        self._on_change = on_change
        self._last: DeploymentStatus | None = None
        self._probes = ProbeRunner()
        self._thread = threading.Thread(target=self._loop, name=f"deploy-{spec.name}", daemon=True)

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        self._thread.start()

    def status(self) -> DeploymentStatus:
        with self._lock:
            return self._status()

    def endpoints(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every instance that takes traffic now."""
        with self._lock:
            return [
                ("127.0.0.1", i.port)
                for i in self._instances
                if i.state in ROUTED and i.port is not None
            ]

    def update(self, spec: DeploymentSpec) -> None:
        """Run ``spec`` from now on: a new instance count is a scale; anything else rolls the
        instances over to a new revision one at a time. A Failed deployment starts over."""
        with self._lock:
            if self._stopping:
                raise RuntimeError(f"deployment {spec.name} is stopped")
            current = self._specs[self._revision]
            self._count = spec.instance_count
            if current.same_runtime(spec) and not self._failed:
                self._specs[self._revision] = spec
            else:
                self._revision = max(self._specs) + 1
                self._specs[self._revision] = spec
            self._failed = False
            self._error = None
            self._lock.notify_all()

    def scale(self, count: int) -> None:
        if count < 0:
            raise ValueError("instance_count must be 0 or more")
        with self._lock:
            self._count = count
            self._lock.notify_all()

    def wait(self, timeout: float) -> DeploymentStatus:
        """Wait until the deployment settles (Ready, Failed or Stopped), up to ``timeout``
        seconds; returns its status either way."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                status = self._status()
                settled = (DeploymentState.READY, DeploymentState.FAILED, DeploymentState.STOPPED)
                left = deadline - time.monotonic()
                if status.state in settled or left <= 0:
                    return status
                self._lock.wait(min(left, 0.5))

    def stop(self, timeout: float | None = None) -> DeploymentStatus:
        """Stop every instance (drain, SIGTERM, SIGKILL after the grace) and the monitor."""
        with self._lock:
            self._stopping = True
            self._count = 0
            self._lock.notify_all()
        if self._thread.is_alive():
            limit = timeout or self.settings.drain_seconds + self.settings.stop_grace_seconds + 5
            self._thread.join(limit)
        else:
            self._kill_all()
        self._probes.close()
        return self.status()

    # ------------------------------------------------------------------ the monitor

    def _wake(self) -> None:
        """An instance process ended: look now rather than at the next tick, so a router
        stops getting its address at once."""
        with self._lock:
            self._lock.notify_all()

    def _loop(self) -> None:
        while True:
            try:
                if not self._tick():
                    return
            except Exception:
                # A bug or a full disk must not leave the instances unsupervised.
                logger.exception("deployment %s: supervisor tick failed", self.folder.name)
            with self._lock:
                self._lock.wait(self.settings.poll_interval)

    def _tick(self) -> bool:
        """One round of observing and converging; False once everything is stopped."""
        with self._lock:
            now = time.monotonic()
            for instance in list(self._instances):
                self._observe(instance, now)
            if self._stopping and not self._instances:
                self._publish()
                return False
            self._converge(now)
            changed = self._publish()
        if changed is not None and self._on_change is not None:
            self._on_change(changed)
        self._probes.schedule(self._probe_targets())
        return True

    def _observe(self, instance: _Instance, now: float) -> None:
        """Move one instance along: notice readiness, an exit, a failing probe, a timeout."""
        process = instance.process
        if instance.state is InstanceState.STOPPING:
            self._stop_step(instance, now)
            return
        if instance.state is InstanceState.RESTARTING:
            if now >= instance.next_start and not self._stopping:
                self._launch(instance, now)
            return
        assert process is not None
        code = process.exit_code()
        if code is not None:
            self._ended(instance, code, now)
            return
        if instance.state is InstanceState.STARTING:
            status = process.status()
            if status is not None and status.state == "ready":
                instance.state, instance.port, instance.ready_at = (
                    InstanceState.READY,
                    status.port,
                    now,
                )
                self._ever_ready.add(instance.revision)
                self._start_failures.pop(instance.revision, None)
            elif now - instance.started_at > self._spec(instance).start_timeout_seconds:
                limit = self._spec(instance).start_timeout_seconds
                instance.killed_because = f"init() did not finish within {limit:g}s"
                process.signal(signal.SIGKILL)
            return
        if instance.ready_at is not None and now - instance.ready_at > self.settings.stable_seconds:
            instance.failures = 0
        self._apply_probes(instance, now)

    def _apply_probes(self, instance: _Instance, now: float) -> None:
        result = self._probes.result(instance.id)
        if result is None or instance.process is None:
            return
        spec = self._spec(instance)
        if result.live_failures >= spec.liveness_probe.failure_threshold:
            instance.killed_because = (
                f"liveness probe failed {result.live_failures} times in a row: {result.last_error}"
            )
            self._probes.forget(instance.id)
            instance.process.signal(signal.SIGKILL)
        elif result.ready_failures >= spec.readiness_probe.failure_threshold:
            instance.state = InstanceState.UNREADY
        elif result.ready_failures == 0 and instance.state is InstanceState.UNREADY:
            instance.state = InstanceState.READY

    def _ended(self, instance: _Instance, code: int, now: float) -> None:
        """The process ended on its own: record why, count it, schedule the restart."""
        process = instance.process
        assert process is not None
        status = process.status()
        was_ready = instance.state is not InstanceState.STARTING
        if status is not None and status.state == "failed" and status.error:
            instance.error = f"init() failed:\n{status.error}"
        elif code == INIT_FAILED_EXIT:
            instance.error = "init() failed; see the instance log"
        elif instance.killed_because:
            instance.error = f"{instance.killed_because}: the instance was killed"
        else:
            how = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            tail = process.log_tail(self.settings.log_tail_lines)
            instance.error = f"the instance process ended ({how}); its log ends:\n{tail}"
        instance.killed_because = None
        process.signal(signal.SIGKILL)  # whatever it left in its process group
        self._probes.forget(instance.id)
        instance.process, instance.port, instance.ready_at = None, None, None
        instance.failures += 1
        if not was_ready and instance.revision not in self._ever_ready:
            failures = self._start_failures.get(instance.revision, 0) + 1
            self._start_failures[instance.revision] = failures
            if failures >= self.settings.max_start_failures:
                self._give_up(instance.revision, instance.error or "the instance failed to start")
                if instance.state is InstanceState.STOPPING:
                    return
        backoff = self.settings.backoff_initial * 2 ** (instance.failures - 1)
        instance.state = InstanceState.RESTARTING
        instance.next_start = now + min(backoff, self.settings.backoff_max)

    def _give_up(self, revision: int, error: str) -> None:
        """A revision that cannot start: roll back to the last good one, or fail."""
        for other in self._instances:
            if other.revision == revision:
                self._retire(other, time.monotonic())
        if revision != self._revision:
            return
        if self._stable is not None and self._stable != revision:
            self._error = f"the update to revision {revision} was rolled back: {error}"
            self._revision = self._stable
        else:
            self._failed = True
            self._error = error

    def _converge(self, now: float) -> None:
        """Start, retire and roll instances towards the wanted count of the wanted revision."""
        if self._failed or self._stopping:
            for instance in self._instances:
                self._retire(instance, now)
            return
        current = [i for i in self._instances if i.revision == self._revision and _live(i)]
        old = [i for i in self._instances if i.revision != self._revision and _live(i)]
        for extra in sorted(current, key=_retire_first)[: max(0, len(current) - self._count)]:
            self._retire(extra, now)
            current.remove(extra)
        missing = self._count - len(current)
        if missing > 0 and old:
            # Rolling: one new instance at a time, and only while none is still starting.
            if not any(i.state is not InstanceState.READY for i in current):
                self._add(now)
        else:
            for _ in range(missing):
                self._add(now)
        ready = sum(1 for i in current if i.state is InstanceState.READY)
        for instance in sorted(old, key=_retire_first):
            if ready + len(old) <= self._count:
                break
            self._retire(instance, now)
            old.remove(instance)
        if not old and ready == self._count and self._count > 0:
            self._stable = self._revision

    def _add(self, now: float) -> None:
        instance = _Instance(
            id=f"i{next(self._ids)}",
            revision=self._revision,
            log_file=self.folder / "logs" / "pending.log",
        )
        instance.log_file = self.folder / "logs" / f"{instance.id}.log"
        self._instances.append(instance)
        self._launch(instance, now)

    def _launch(self, instance: _Instance, now: float) -> None:
        spec = self._spec(instance)
        attempt = f"instance {instance.id} of {spec.name} (revision {instance.revision})"
        if instance.process is None and instance.started_at:
            instance.restarts += 1
            attempt += f", restart {instance.restarts}"
        instance.state, instance.started_at = InstanceState.STARTING, now
        try:
            instance.process = InstanceProcess(
                spec,
                self.folder / instance.id,
                instance.log_file,
                attempt,
                self._wake,
                users=self.settings.users,
            )
        except (OSError, NoUserError) as error:
            # No free job user id (no_free_job_user) fails a start like any other.
            instance.process = None
            instance.error = f"the instance could not be started: {error}"
            instance.state = InstanceState.RESTARTING
            instance.failures += 1
            failures = self._start_failures.get(instance.revision, 0) + 1
            if instance.revision not in self._ever_ready:
                # As for a process that ends before it is ready: a revision that never
                # started is given up; one that serves keeps retrying with its backoff.
                self._start_failures[instance.revision] = failures
                if failures >= self.settings.max_start_failures:
                    self._give_up(instance.revision, instance.error)
            backoff = self.settings.backoff_initial * 2 ** (instance.failures - 1)
            instance.next_start = now + min(backoff, self.settings.backoff_max)

    def _retire(self, instance: _Instance, now: float) -> None:
        if instance.state is InstanceState.STOPPING:
            return
        routed = instance.state in ROUTED
        instance.state = InstanceState.STOPPING
        instance.term_at = now + (self.settings.drain_seconds if routed else 0.0)
        instance.kill_at = instance.term_at + self.settings.stop_grace_seconds
        self._probes.forget(instance.id)

    def _stop_step(self, instance: _Instance, now: float) -> None:
        process = instance.process
        if process is None or process.exit_code() is not None:
            if process is not None:
                process.signal(signal.SIGKILL)  # leftovers in its process group
            self._instances.remove(instance)
            return
        if not instance.termed and now >= instance.term_at:
            process.signal(signal.SIGTERM)
            instance.termed = True
        elif now >= instance.kill_at:
            process.signal(signal.SIGKILL)

    def _kill_all(self) -> None:
        with self._lock:
            for instance in self._instances:
                if instance.process is not None:
                    instance.process.signal(signal.SIGKILL)

    # ------------------------------------------------------------------ reporting

    def _spec(self, instance: _Instance) -> DeploymentSpec:
        return self._specs[instance.revision]

    def _probe_targets(self) -> list[tuple[str, int, DeploymentSpec, float]]:
        with self._lock:
            return [
                (i.id, i.port, self._spec(i), i.ready_at)
                for i in self._instances
                if i.state in (InstanceState.READY, InstanceState.UNREADY)
                and i.port is not None
                and i.ready_at is not None
            ]

    def _status(self) -> DeploymentStatus:
        instances = tuple(i.status() for i in self._instances)
        current = [i for i in self._instances if i.revision == self._revision]
        ready = sum(1 for i in current if i.state is InstanceState.READY)
        # An update is done once the old instances are gone, not only out of traffic.
        old = any(i.revision != self._revision for i in self._instances)
        if self._stopping and not self._instances:
            state = DeploymentState.STOPPED
        elif self._failed:
            state = DeploymentState.FAILED
        elif old or (self._stable is not None and self._stable != self._revision):
            state = DeploymentState.UPDATING
        elif ready >= self._count:
            state = DeploymentState.READY
        elif self._stable is None:
            state = DeploymentState.STARTING
        else:
            state = DeploymentState.DEGRADED
        return DeploymentStatus(
            name=self._specs[self._revision].name,
            state=state,
            revision=self._revision,
            instance_count=self._count,
            ready_count=ready,
            error=self._error,
            instances=instances,
        )

    def _publish(self) -> DeploymentStatus | None:
        """The status when it changed since the last call (waking ``wait``), else None."""
        status = self._status()
        if status == self._last:
            return None
        self._last = status
        self._lock.notify_all()
        return status


def _live(instance: _Instance) -> bool:
    return instance.state is not InstanceState.STOPPING


def _retire_first(instance: _Instance) -> tuple[bool, float]:
    """Instances not taking traffic go first, then the newest."""
    return (instance.state is InstanceState.READY, -instance.started_at)
