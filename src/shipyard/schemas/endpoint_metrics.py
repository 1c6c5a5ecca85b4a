"""What the API shows of an online deployment's monitoring: per-minute points and a
summary of a time range (docs/endpoints.md, "Monitoring")."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shipyard.schemas.common import ResponseBody


class MetricPointRead(ResponseBody):
    """One minute of one deployment, as the gateway of this server saw it."""

    time: datetime = Field(description="The start of the minute (UTC).")
    requests: int
    errors_4xx: int
    errors_5xx: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    restarts: int = Field(description="Instance restarts in the minute.")
    by_status: dict[str, int] = Field(description="Requests per HTTP status code.")
    by_credential: dict[str, int] = Field(
        description="Requests per credential the caller used: primary, secondary, aml_token."
    )


class MetricsSummaryRead(ResponseBody):
    """A range of minutes together (percentiles within 5% of the exact ones)."""

    requests: int
    errors_4xx: int
    errors_5xx: int
    error_rate: float | None = Field(description="(4xx + 5xx) / requests; None without requests.")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    restarts: int
    by_credential: dict[str, int]


class DeploymentMetricsRead(ResponseBody):
    deployment: str
    since: datetime
    until: datetime
    summary: MetricsSummaryRead
    points: list[MetricPointRead] = Field(description="Minutes with figures, oldest first.")


class EndpointMetricsRead(ResponseBody):
    endpoint: str
    since: datetime
    until: datetime
    deployments: list[DeploymentMetricsRead]
