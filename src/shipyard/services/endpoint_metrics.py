"""Online deployments' figures as time series: written every minute, read by range.

``flush`` hands the gateway's per-minute counts (``ScoringStats.take_minutes``) and the
runtime's instance restarts since the last flush to the store, adding them to the minute's row
(the latency histograms add up too, so the minute's percentiles stay exact to their buckets
however many flushes, or servers, wrote to it). ``purge`` drops rows past the retention.
``deployment_series`` and ``endpoint_series`` read a range back as points and a summary
(``shipyard online-endpoint show`` shows the last hour's).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.schemas.endpoint_metrics import (
    DeploymentMetricsRead,
    EndpointMetricsRead,
    MetricPointRead,
    MetricsSummaryRead,
)
from shipyard.services.deployment_runtime import DeploymentRuntime
from shipyard.services.endpoints import require_endpoint
from shipyard.services.scoring_stats import MinuteFigures, ScoringStats, histogram_percentile
from shipyard.store import endpoint_metrics as store
from shipyard.store import endpoints as endpoint_store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.endpoint_metrics import EndpointMetricRow
from shipyard.store.endpoints import OnlineDeploymentRow, OnlineEndpointRow

log = logging.getLogger(__name__)

DEFAULT_RANGE = timedelta(hours=1)
# A range's points are all returned at once: one a minute, so at most 44,640 per deployment.
MAX_RANGE = timedelta(days=31)


class EndpointMetrics:
    def __init__(
        self,
        db: Database,
        stats: ScoringStats,
        runtime: DeploymentRuntime | None,
        *,
        retention_days: float,
    ) -> None:
        self.db = db
        self.stats = stats
        self.runtime = runtime
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()  # one flush at a time: each adds to rows it may create
        self._restarts_written: dict[str, int] = {}

    # -- writing ---------------------------------------------------------------------------------

    def flush(self, now: datetime | None = None) -> int:
        """Add what was counted since the last flush to the store; the rows touched."""
        minute = _minute_of(now or utcnow())
        with self._lock:
            taken = self.stats.take_minutes()
            restarts = self._new_restarts()
            figures: dict[tuple[str, int], MinuteFigures] = {
                (deployment_id, m.minute): m
                for deployment_id, minutes in taken.items()
                for m in minutes
            }
            for deployment_id in restarts:
                figures.setdefault((deployment_id, minute), MinuteFigures(minute))
            if not figures:
                return 0
            try:
                with self.db.write() as session:
                    return self._add(session, figures, restarts, minute)
            except Exception:
                # What was taken is lost; restarts are counted again next time.
                for deployment_id, added in restarts.items():
                    self._restarts_written[deployment_id] -= added
                raise

    def _new_restarts(self) -> dict[str, int]:
        if self.runtime is None:
            return {}
        added: dict[str, int] = {}
        live = set()
        for _, _, route in self.runtime.deployments():
            live.add(route.id)
            total = self.runtime.restarts(route.id)
            before = self._restarts_written.get(route.id, 0)
            if total > before:
                added[route.id] = total - before
            self._restarts_written[route.id] = total
        for gone in [d for d in self._restarts_written if d not in live]:
            del self._restarts_written[gone]
        return added

    def _add(
        self,
        session: Session,
        figures: Mapping[tuple[str, int], MinuteFigures],
        restarts: Mapping[str, int],
        now_minute: int,
    ) -> int:
        wanted = {deployment_id for deployment_id, _ in figures}
        existing = set(
            session.scalars(
                select(OnlineDeploymentRow.id).where(OnlineDeploymentRow.id.in_(wanted))
            )
        )
        touched = 0
        for (deployment_id, minute), counted in sorted(figures.items()):
            if deployment_id not in existing:  # deleted meanwhile: its series went with it
                continue
            moment = _moment(minute)
            row = store.get(session, deployment_id, moment)
            if row is None:
                row = EndpointMetricRow(
                    deployment_id=deployment_id,
                    minute=moment,
                    requests=0,
                    errors_4xx=0,
                    errors_5xx=0,
                    restarts=0,
                    by_status={},
                    by_credential={},
                    latency_histogram={},
                )
                session.add(row)
            _merge(row, counted)
            if minute == now_minute:
                row.restarts += restarts.get(deployment_id, 0)
            touched += 1
        return touched

    def purge(self, now: datetime | None = None) -> int:
        """Delete the rows older than the retention; how many."""
        with self.db.write() as session:
            return store.purge_before(session, (now or utcnow()) - self.retention)

    # -- reading ---------------------------------------------------------------------------------

    def deployment_series(
        self,
        workspace: str,
        endpoint: str,
        name: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> DeploymentMetricsRead:
        start, end = _range(since, until)
        with self.db.read() as session:
            parent = require_endpoint(session, workspace, endpoint)
            row = endpoint_store.get_deployment(session, parent.id, name)
            if row is None:
                raise NotFoundError(
                    f"deployment {name!r} does not exist on online endpoint {endpoint!r}",
                    code="deployment_not_found",
                    field="name",
                )
            rows = store.series(session, [row.id], start, end)
        return _read(name, rows, start, end)

    def endpoint_series(
        self,
        workspace: str,
        endpoint: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> EndpointMetricsRead:
        """Every deployment of the endpoint, by name (one without figures has none)."""
        start, end = _range(since, until)
        with self.db.read() as session:
            parent: OnlineEndpointRow = require_endpoint(session, workspace, endpoint)
            deployments = endpoint_store.list_deployments(session, parent.id)
            rows = store.series(session, [d.id for d in deployments], start, end)
        by_deployment: dict[str, list[EndpointMetricRow]] = {}
        for row in rows:
            by_deployment.setdefault(row.deployment_id, []).append(row)
        return EndpointMetricsRead(
            endpoint=endpoint,
            since=start,
            until=end,
            deployments=[
                _read(d.name, by_deployment.get(d.id, []), start, end) for d in deployments
            ],
        )


def _merge(row: EndpointMetricRow, counted: MinuteFigures) -> None:
    statuses = Counter({int(k): int(v) for k, v in row.by_status.items()})
    statuses.update(counted.statuses)
    histogram = Counter({int(k): int(v) for k, v in row.latency_histogram.items()})
    histogram.update(counted.latency)
    credentials = Counter({str(k): int(v) for k, v in row.by_credential.items()})
    credentials.update(counted.credentials)
    row.requests = sum(statuses.values())
    row.errors_4xx = sum(n for status, n in statuses.items() if 400 <= status < 500)
    row.errors_5xx = sum(n for status, n in statuses.items() if status >= 500)
    # New dicts (not changed in place): JSON columns do not track mutation.
    row.by_status = {str(k): v for k, v in sorted(statuses.items())}
    row.by_credential = dict(sorted(credentials.items()))
    row.latency_histogram = {str(k): v for k, v in sorted(histogram.items())}
    row.p50_ms = histogram_percentile(histogram, 0.50)
    row.p95_ms = histogram_percentile(histogram, 0.95)
    row.p99_ms = histogram_percentile(histogram, 0.99)


def _read(
    name: str, rows: list[EndpointMetricRow], since: datetime, until: datetime
) -> DeploymentMetricsRead:
    return DeploymentMetricsRead(
        deployment=name,
        since=since,
        until=until,
        summary=summarise(rows),
        points=[_point(row) for row in rows],
    )


def summarise(rows: Iterable[EndpointMetricRow]) -> MetricsSummaryRead:
    histogram: Counter[int] = Counter()
    credentials: Counter[str] = Counter()
    requests = errors_4xx = errors_5xx = restarts = 0
    for row in rows:
        requests += row.requests
        errors_4xx += row.errors_4xx
        errors_5xx += row.errors_5xx
        restarts += row.restarts
        histogram.update({int(k): int(v) for k, v in row.latency_histogram.items()})
        credentials.update({str(k): int(v) for k, v in row.by_credential.items()})
    return MetricsSummaryRead(
        requests=requests,
        errors_4xx=errors_4xx,
        errors_5xx=errors_5xx,
        error_rate=(errors_4xx + errors_5xx) / requests if requests else None,
        p50_ms=_rounded(histogram_percentile(histogram, 0.50)),
        p95_ms=_rounded(histogram_percentile(histogram, 0.95)),
        p99_ms=_rounded(histogram_percentile(histogram, 0.99)),
        restarts=restarts,
        by_credential=dict(sorted(credentials.items())),
    )


def _point(row: EndpointMetricRow) -> MetricPointRead:
    return MetricPointRead(
        time=row.minute,
        requests=row.requests,
        errors_4xx=row.errors_4xx,
        errors_5xx=row.errors_5xx,
        p50_ms=_rounded(row.p50_ms),
        p95_ms=_rounded(row.p95_ms),
        p99_ms=_rounded(row.p99_ms),
        restarts=row.restarts,
        by_status={str(k): int(v) for k, v in row.by_status.items()},
        by_credential={str(k): int(v) for k, v in row.by_credential.items()},
    )


def _range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = _utc(until) or utcnow()
    start = _utc(since) or end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInputError("since must be before until", code="invalid_range", field="since")
    if end - start > MAX_RANGE:
        raise InvalidInputError(
            f"a range spans at most {MAX_RANGE.days} days", code="invalid_range", field="since"
        )
    return start, end


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC, the zone the series is stored in."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _minute_of(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def _moment(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
