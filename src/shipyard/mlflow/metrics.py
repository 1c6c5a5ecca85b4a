"""MLflow's metric history: every point of one metric of a run, in pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.mlflow import schemas as m
from shipyard.mlflow.paging import next_token, offset_of
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import body_of

router = APIRouter(
    prefix=API_PREFIX + "/metrics",
    route_class=GuardedRoute,
    tags=["mlflow"],
)

MAX_HISTORY_PAGE = 25_000  # what the client asks for per page (GET_METRIC_HISTORY_MAX_RESULTS)


@router.get("/get-history", dependencies=[require(actions.JOBS_READ)])
def get_metric_history(
    workspace: str,
    metric_key: str = Query(min_length=1, max_length=m.MAX_KEY),
    run_id: str | None = Query(None, max_length=64),
    run_uuid: str | None = Query(None, max_length=64),
    max_results: int | None = Query(None, ge=1, le=MAX_HISTORY_PAGE),
    page_token: str | None = Query(None),
    services: Services = Depends(get_services),
) -> m.MetricHistoryResponse:
    ref = body_of(m.RunRef, run_id=run_id, run_uuid=run_uuid)
    history = services.runs.metric_history(workspace, ref.id, metric_key, None)
    start = offset_of(page_token)
    end = start + (max_results or MAX_HISTORY_PAGE)
    points = [
        m.MetricOut(key=metric_key, value=p.value, timestamp=p.timestamp, step=p.step)
        for p in history.points[start:end]
    ]
    token = next_token(end, len(history.points))
    return m.MetricHistoryResponse(metrics=points, next_page_token=token)
