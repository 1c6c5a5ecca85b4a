"""Cost per workspace: every ended job's compute time at its target's rate, summed.

A job's cost is recorded when it ends (``services.job_runner``: cores held x wall time x the
compute's rate at that moment), so a report is a sum over rows and a later change of rate
does not rewrite history. Grouping by experiment, user or compute answers "what did this
project spend, and on what" -- the reason teams keep one workspace per project.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from shipyard.domain.errors import NotFoundError
from shipyard.schemas.costs import CostGrouping, CostLine, CostReport
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import ExperimentRow, JobRow
from shipyard.store.users import UserRow
from shipyard.store.workspaces import get_workspace


class CostService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def report(
        self, workspace: str, *, by: CostGrouping = "experiment", since: datetime | None = None
    ) -> CostReport:
        key = {
            "experiment": ExperimentRow.name,
            "user": func.coalesce(UserRow.name, JobSubmissionRow.created_by),
            "compute": JobSubmissionRow.compute,
        }[by]
        with self.db.read() as session:
            ws = get_workspace(session, workspace)
            if ws is None:
                raise NotFoundError(
                    f"workspace {workspace!r} does not exist", code="workspace_not_found"
                )
            query = (
                select(
                    key,
                    func.count(),
                    func.coalesce(func.sum(JobSubmissionRow.core_seconds), 0.0),
                    func.coalesce(func.sum(JobSubmissionRow.cost), 0.0),
                )
                .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
                .join(ExperimentRow, ExperimentRow.id == JobRow.experiment_id)
                .outerjoin(UserRow, UserRow.id == JobSubmissionRow.created_by)
                .where(JobSubmissionRow.workspace_id == ws.id, JobSubmissionRow.state == "done")
                .group_by(key)
                .order_by(key)
            )
            if since is not None:
                query = query.where(JobSubmissionRow.ended_at >= since)
            rows = session.execute(query).all()
        lines = [
            CostLine(
                key=str(name),
                jobs=int(count),
                core_hours=float(seconds) / 3600.0,
                cost=float(cost),
            )
            for name, count, seconds, cost in rows
        ]
        return CostReport(
            workspace=workspace,
            by=by,
            since=since,
            lines=lines,
            total_jobs=sum(line.jobs for line in lines),
            total_core_hours=sum(line.core_hours for line in lines),
            total_cost=sum(line.cost for line in lines),
        )
