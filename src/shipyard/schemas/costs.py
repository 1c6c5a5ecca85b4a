"""A workspace's cost report: compute time and its price, grouped."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shipyard.schemas.common import ResponseBody

CostGrouping = Literal["experiment", "user", "compute"]


class CostLine(ResponseBody):
    key: str = Field(description="The experiment, user or compute the line is for.")
    jobs: int
    core_hours: float
    cost: float


class CostReport(ResponseBody):
    workspace: str
    by: CostGrouping
    since: datetime | None = None
    lines: list[CostLine]
    total_jobs: int
    total_core_hours: float
    total_cost: float
