"""What the scoring gateway counts per deployment: requests by status and their latency.

Kept in memory (the gateway's hot path only adds to it; no store write per request), so
monitoring can read and export it (Prometheus, time series) without touching the gateway.
Latency percentiles come from the most recent ``window`` requests of each deployment.

Monitoring reads two more views, filled by the same ``record`` call: cumulative counts
(``snapshot``: Prometheus' counters and its latency histogram over ``LATENCY_BUCKETS``), and
per-minute figures (``take_minutes``: what the metrics flush adds to the store), whose
latencies go into fine log-spaced buckets (``latency_bucket``) so that any range of minutes
merges into percentiles without keeping every latency.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

# Prometheus' latency buckets (seconds): a scoring call takes milliseconds to the longest
# request_timeout_ms allowed (180 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)
# The per-minute histogram: bucket i holds latencies from 0.1 ms * 2**(i/8) up to the next
# bound, so a percentile read from it is within 5% of the true latency.
_FINE_BASE_MS = 0.1
_FINE_PER_DOUBLING = 8
# Minutes kept in memory per deployment when nothing takes them (no flush running).
_MAX_MINUTES = 60


@dataclass
class MinuteFigures:
    """One deployment's requests in one minute (``minute``: minutes since the epoch)."""

    minute: int
    statuses: Counter[int] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)  # latency_bucket -> requests
    credentials: Counter[str] = field(default_factory=Counter)


@dataclass
class _Counts:
    statuses: Counter[int] = field(default_factory=Counter)
    seconds_total: float = 0.0
    recent: deque[float] = field(default_factory=deque)
    # Per LATENCY_BUCKETS bound, then +Inf: requests in it (not cumulative).
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    credentials: Counter[str] = field(default_factory=Counter)
    minutes: dict[int, MinuteFigures] = field(default_factory=dict)


@dataclass(frozen=True)
class CumulativeStats:
    """Everything counted since the server started: what Prometheus scrapes."""

    by_status: dict[int, int]
    by_credential: dict[str, int]
    bucket_counts: list[int]  # cumulative, per LATENCY_BUCKETS bound then +Inf
    latency_seconds_total: float


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
        # Scoring requests the data collector wrote to a datastore, and dropped.
        self._collected: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()

    def record(
        self, deployment_id: str, status: int, seconds: float, credential: str | None = None
    ) -> None:
        """``credential``: which one the caller used ("primary", "secondary", "aml_token";
        a mirrored copy is counted under none)."""
        minute = int(time.time() // 60)
        fine = latency_bucket(seconds)
        coarse = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            counts = self._counts.get(deployment_id)
            if counts is None:
                counts = self._counts[deployment_id] = _Counts(recent=deque(maxlen=self.window))
            counts.statuses[status] += 1
            counts.seconds_total += seconds
            counts.recent.append(seconds)
            counts.buckets[coarse] += 1
            figures = counts.minutes.get(minute)
            if figures is None:
                figures = counts.minutes[minute] = MinuteFigures(minute)
                if len(counts.minutes) > _MAX_MINUTES:
                    del counts.minutes[min(counts.minutes)]
            figures.statuses[status] += 1
            figures.latency[fine] += 1
            if credential is not None:
                counts.credentials[credential] += 1
                figures.credentials[credential] += 1

    def snapshot(self) -> dict[str, CumulativeStats]:
        """Every deployment's counts since the start (or since ``forget``)."""
        with self._lock:
            copied = {
                deployment_id: (
                    dict(c.statuses),
                    dict(c.credentials),
                    list(c.buckets),
                    c.seconds_total,
                )
                for deployment_id, c in self._counts.items()
            }
        return {
            deployment_id: CumulativeStats(
                by_status=statuses,
                by_credential=credentials,
                bucket_counts=_cumulative(buckets),
                latency_seconds_total=total,
            )
            for deployment_id, (statuses, credentials, buckets, total) in copied.items()
        }

    def take_minutes(self) -> dict[str, list[MinuteFigures]]:
        """Every deployment's minutes counted since the last take, handed over and
        forgotten: the store adds them to what it has (a request recorded after a take
        comes with the next one, even for a minute already written)."""
        with self._lock:
            taken = {
                deployment_id: list(counts.minutes.values())
                for deployment_id, counts in self._counts.items()
                if counts.minutes
            }
            for counts in self._counts.values():
                counts.minutes = {}
        return taken

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

    def record_collection(
        self, deployment_id: str, *, collected: int = 0, dropped: int = 0
    ) -> None:
        """Requests of the deployment the data collector wrote, or dropped (buffer full, a
        failed write): counted per flush, not per request."""
        with self._lock:
            if collected:
                self._collected[deployment_id] += collected
            if dropped:
                self._dropped[deployment_id] += dropped

    def collection(self) -> dict[str, tuple[int, int]]:
        """(collected, dropped) of every deployment that collected or dropped any."""
        with self._lock:
            ids = set(self._collected) | set(self._dropped)
            return {i: (self._collected[i], self._dropped[i]) for i in ids}

    def forget(self, deployment_id: str) -> None:
        with self._lock:
            self._counts.pop(deployment_id, None)
            self._collected.pop(deployment_id, None)
            self._dropped.pop(deployment_id, None)


def latency_bucket(seconds: float) -> int:
    """The fine bucket of a latency (see ``bucket_latency_ms``)."""
    ms = seconds * 1000
    if ms <= _FINE_BASE_MS:
        return 0
    return int(math.log2(ms / _FINE_BASE_MS) * _FINE_PER_DOUBLING)


def bucket_latency_ms(bucket: int) -> float:
    """A fine bucket's latency in milliseconds: the geometric middle of its bounds."""
    return _FINE_BASE_MS * 2 ** ((bucket + 0.5) / _FINE_PER_DOUBLING)


def histogram_percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile (milliseconds) of a fine-bucket histogram, None when
    empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = min(total - 1, int(fraction * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen > rank:
            return bucket_latency_ms(bucket)
    return bucket_latency_ms(max(histogram))


def _cumulative(counts: list[int]) -> list[int]:
    running, total = [], 0
    for count in counts:
        total += count
        running.append(total)
    return running


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
