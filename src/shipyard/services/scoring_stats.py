"""What the scoring gateway counts per deployment: requests by status and their latency.

Kept in memory (the gateway's hot path only adds to it; no store write per request), so
monitoring can read and export it (Prometheus, time series) without touching the gateway.
Latency percentiles come from the most recent ``window`` requests of each deployment.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass
class _Counts:
    statuses: Counter[int] = field(default_factory=Counter)
    seconds_total: float = 0.0
    recent: deque[float] = field(default_factory=deque)


@dataclass(frozen=True)
class DeploymentStats:
    requests: int
    by_status: dict[int, int]
    latency_seconds_total: float
    p50: float | None
    p95: float | None
    p99: float | None


class ScoringStats:
    def __init__(self, window: int = 2048) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._counts: dict[str, _Counts] = {}

    def record(self, deployment_id: str, status: int, seconds: float) -> None:
        with self._lock:
            counts = self._counts.get(deployment_id)
            if counts is None:
                counts = self._counts[deployment_id] = _Counts(recent=deque(maxlen=self.window))
            counts.statuses[status] += 1
            counts.seconds_total += seconds
            counts.recent.append(seconds)

    def get(self, deployment_id: str) -> DeploymentStats:
        with self._lock:
            counts = self._counts.get(deployment_id) or _Counts()
            recent = sorted(counts.recent)
            statuses = dict(counts.statuses)
            total = counts.seconds_total
        return DeploymentStats(
            requests=sum(statuses.values()),
            by_status=statuses,
            latency_seconds_total=total,
            p50=_percentile(recent, 0.50),
            p95=_percentile(recent, 0.95),
            p99=_percentile(recent, 0.99),
        )

    def forget(self, deployment_id: str) -> None:
        with self._lock:
            self._counts.pop(deployment_id, None)


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
