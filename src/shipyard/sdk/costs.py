"""``ws.costs``: what a workspace's jobs cost."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from shipyard.schemas.costs import CostGrouping, CostReport
from shipyard.sdk.http import HttpSession


class CostOperations:
    """Example::

    report = ws.costs.report(by="user", since=datetime(2026, 11, 1, tzinfo=UTC))
    for line in report.lines:
        print(line.key, line.jobs, line.core_hours, line.cost)
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._path = f"/api/v1/workspaces/{quote(workspace, safe='')}/cost"

    def report(
        self, *, by: CostGrouping = "experiment", since: datetime | str | None = None
    ) -> CostReport:
        """Compute time and cost of ended jobs, by experiment, user or compute."""
        params: dict[str, str] = {"by": by}
        if since is not None:
            params["since"] = since.isoformat() if isinstance(since, datetime) else since
        return self._http.get_model(self._path, CostReport, params=params)
