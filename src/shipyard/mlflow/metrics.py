"""MLflow's metric history: every point of one metric of a run, in pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.paging import encode_page_token
from shipyard.mlflow import schemas as m
from shipyard.mlflow.paging import offset_of
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import body_of
from shipyard.schemas.tracking import metric_json

router = APIRouter(
    prefix=API_PREFIX + "/metrics",
    route_class=GuardedRoute,
    tags=["mlflow"],
)

MAX_HISTORY_PAGE = 25_000  # what the client asks for per page (GET_METRIC_HISTORY_MAX_RESULTS)


@router.get(
    "/get-history",
    dependencies=[require(actions.JOBS_READ)],
    response_model=m.MetricHistoryResponse,
)
def get_metric_history(
    workspace: str,
    metric_key: str = Query(min_length=1, max_length=m.MAX_KEY),
    run_id: str | None = Query(None, max_length=64),
    run_uuid: str | None = Query(None, max_length=64),
    max_results: int | None = Query(None, ge=1, le=MAX_HISTORY_PAGE),
    page_token: str | None = Query(None),
    services: Services = Depends(get_services),
) -> JSONResponse:
    ref = body_of(m.RunRef, run_id=run_id, run_uuid=run_uuid)
    start = offset_of(page_token)
    size = max_results or MAX_HISTORY_PAGE
    points, more = services.runs.metric_history_page(
        workspace, ref.id, metric_key, offset=start, limit=size
    )
    # Built as plain dicts: a model per point costs more than the query for long histories.
    metrics = [
        {"key": metric_key, "value": metric_json(value), "timestamp": ts, "step": step}
        for step, ts, value in points
    ]
    token = encode_page_token(str(start + size)) if more else None
    return JSONResponse({"metrics": metrics, "next_page_token": token})
