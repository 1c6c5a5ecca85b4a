"""Liveness and readiness probes of running instances, on a thread of their own so a hung
instance (which answers nothing until the probe's timeout) never holds up the supervisor.

The supervisor hands over the instances to probe each tick (``schedule``) and reads the
counts of consecutive failures back (``result``); what to do about them is its call.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass

from shipyard.serving.spec import DeploymentSpec, Probe

#: (instance id, port, its spec, when it got ready)
Target = tuple[str, int, DeploymentSpec, float]


@dataclass(frozen=True)
class ProbeResult:
    live_failures: int
    ready_failures: int
    last_error: str | None


class ProbeRunner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._targets: list[Target] = []
        self._results: dict[str, ProbeResult] = {}
        self._last: dict[tuple[str, str], float] = {}  # (instance, probe) -> last probed
        self._closed = False
        self._thread: threading.Thread | None = None

    def schedule(self, targets: list[Target]) -> None:
        with self._lock:
            self._targets = targets
            if self._thread is None and targets and not self._closed:
                self._thread = threading.Thread(target=self._run, name="probes", daemon=True)
                self._thread.start()

    def result(self, instance_id: str) -> ProbeResult | None:
        with self._lock:
            return self._results.get(instance_id)

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self._results.pop(instance_id, None)
            for key in [k for k in self._last if k[0] == instance_id]:
                del self._last[key]

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                targets = list(self._targets)
            for instance_id, port, spec, ready_at in targets:
                self._maybe_probe(instance_id, port, "live", spec.liveness_probe, ready_at)
                self._maybe_probe(instance_id, port, "ready", spec.readiness_probe, ready_at)
            self._wake.wait(0.2)

    def _maybe_probe(
        self, instance_id: str, port: int, kind: str, probe: Probe, ready_at: float
    ) -> None:
        now = time.monotonic()
        key = (instance_id, kind)
        with self._lock:
            due = max(ready_at + probe.initial_delay, self._last.get(key, 0.0) + probe.period)
            if now < due:
                return
            self._last[key] = now
        error = _get(port, f"/health/{kind}", probe.timeout)
        with self._lock:
            if key not in self._last:  # forgotten while it was being probed
                return
            before = self._results.get(instance_id, ProbeResult(0, 0, None))
            if kind == "live":
                live = 0 if error is None else before.live_failures + 1
                result = ProbeResult(live, before.ready_failures, error or before.last_error)
            else:
                ready = 0 if error is None else before.ready_failures + 1
                result = ProbeResult(before.live_failures, ready, error or before.last_error)
            self._results[instance_id] = result


def _get(port: int, path: str, timeout: float) -> str | None:
    """None when the instance answers 200, else what went wrong."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return None if response.status == 200 else f"GET {path} answered {response.status}"
    except (OSError, http.client.HTTPException) as error:
        return f"GET {path} failed: {error or type(error).__name__}"
    finally:
        connection.close()
