"""MLflow's metric history: every point of one metric of a run, in pages."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.mlflow import schemas as m
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
) -> Response:
    ref = body_of(m.RunRef, run_id=run_id, run_uuid=run_uuid)
    size = max_results or MAX_HISTORY_PAGE
    points, more = services.runs.metric_history_page(
        workspace, ref.id, metric_key, after=_position(page_token), limit=size
    )
    token = None
    if more and points:
        step, timestamp, _, point_id = points[-1]
        token = encode_page_token(f"{step}:{timestamp}:{point_id}")
    # Written as JSON text directly: a model (or even a dict) per point costs more than the
    # query for long histories. Finite values print as Python's repr, which JSON reads.
    prefix = '{"key":' + json.dumps(metric_key) + ',"value":'
    body = ",".join(
        f'{prefix}{value!r},"timestamp":{ts},"step":{step}}}'
        if value - value == 0  # finite: NaN and infinities are not
        else f'{prefix}"{metric_json(value)}","timestamp":{ts},"step":{step}}}'
        for step, ts, value, _ in points
    )
    tail = "" if token is None else f',"next_page_token":"{token}"'
    return Response(f'{{"metrics":[{body}]{tail}}}', media_type="application/json")


def _position(page_token: str | None) -> tuple[int, int, int] | None:
    """The (step, timestamp, id) of the last point a page ended with."""
    after = decode_page_token(page_token)
    if after is None:
        return None
    try:
        step, timestamp, point_id = (int(part) for part in after.split(":"))
    except ValueError as exc:
        raise InvalidInputError(
            "page_token is not a token this server issued",
            code="invalid_page_token",
            field="page_token",
        ) from exc
    return step, timestamp, point_id
