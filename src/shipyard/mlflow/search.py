"""MLflow's ``runs/search``, on the run service's search (MLflow's filter grammar, plus OR)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.mlflow import convert
from shipyard.mlflow import schemas as m
from shipyard.mlflow.lookup import default_experiment
from shipyard.mlflow.paths import API_PREFIX
from shipyard.schemas.run_inputs import RunInputsRead
from shipyard.schemas.tracking import metric_json
from shipyard.services.runs import RunRows

router = APIRouter(prefix=API_PREFIX + "/runs", route_class=GuardedRoute, tags=["mlflow"])


@router.post(
    "/search", dependencies=[require(actions.JOBS_READ)], response_model=m.SearchRunsResponse
)
def search_runs(
    workspace: str, body: m.SearchRuns, services: Services = Depends(get_services)
) -> Response:
    view = convert.view_type(body.run_view_type, "run_view_type")
    experiment_ids = [
        default_experiment(services, workspace).id if e == convert.DEFAULT_EXPERIMENT_ID else e
        for e in body.experiment_ids
    ]
    text = (body.filter or "").strip()
    if view == "DELETED_ONLY":
        deleted = "attributes.lifecycle_stage = 'deleted'"
        text = f"({text}) AND {deleted}" if text else deleted
    found = services.runs.search_rows(
        workspace,
        experiment_ids=experiment_ids,
        filter=text or None,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_deleted=view != "ACTIVE_ONLY",
        full=False,
    )
    with_inputs = found.details.with_inputs
    inputs = services.run_inputs.of_runs(list(with_inputs)) if with_inputs else {}
    runs = ",".join(_run_json(row, found, inputs.get(row.id)) for row in found.rows)
    token = "null" if found.next_page_token is None else _quote(found.next_page_token)
    return Response(f'{{"runs":[{runs}],"next_page_token":{token}}}', media_type="application/json")


# What json.dumps writes for a string (ASCII, escaped, quoted), without its Python overhead.
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_NO_INPUTS = '{"dataset_inputs":[],"model_inputs":[]}'


def _run_json(row: Any, found: RunRows, inputs: RunInputsRead | None) -> str:
    """``convert.run`` of the run, as JSON text straight from the store's rows.

    A search answers up to thousands of runs; three models per run (the service's, MLflow's,
    and FastAPI checking the answer), or even a dict per run for json.dumps, cost more than
    the query. tests/mlflow/test_logging_paths.py holds this to ``convert.run``'s output for
    the same runs."""
    run_id = row.id
    tags = dict(found.details.tags.get(run_id, ()))
    user = found.users.get(row.created_by) or tags.get(convert.USER_TAG, "")
    tags[convert.RUN_NAME_TAG] = row.name
    if row.parent_id:
        tags[convert.PARENT_TAG] = row.parent_id
    metrics = ",".join(
        f'{{"key":{_quote(key)},"value":{_number(value, is_nan)},'
        f'"timestamp":{timestamp},"step":{step}}}'
        for key, step, timestamp, value, is_nan in found.details.metrics.get(run_id, ())
    )
    params = _pairs(found.details.params.get(run_id, {}))
    end = convert.ms(row.end_time) if row.end_time else "null"
    info = (
        f'"run_id":{_quote(run_id)},"run_uuid":{_quote(run_id)},"run_name":{_quote(row.name)},'
        f'"experiment_id":{_quote(row.experiment_id)},"user_id":{_quote(user)},'
        f'"status":"{convert.mlflow_status(row.status)}",'
        f'"start_time":{convert.ms(row.start_time)},"end_time":{end},'
        f'"artifact_uri":{_quote(convert.artifact_uri(run_id))},'
        f'"lifecycle_stage":{_quote(row.lifecycle_stage)}'
    )
    consumed = (
        _NO_INPUTS
        if inputs is None or not (inputs.datasets or inputs.models)
        else convert.run_inputs(inputs).model_dump_json(by_alias=True)
    )
    return (
        f'{{"info":{{{info}}},"data":{{"metrics":[{metrics}],"params":[{params}],'
        f'"tags":[{_pairs(tags)}]}},"inputs":{consumed}}}'
    )


def _pairs(values: dict[str, str]) -> str:
    """Params or tags as MLflow's list of key-value objects, by key."""
    return ",".join(
        f'{{"key":{_quote(key)},"value":{_quote(value)}}}' for key, value in sorted(values.items())
    )


def _number(value: float | None, is_nan: bool) -> str:
    """A latest metric value in JSON (``metric_json``'s spelling of NaN and infinities)."""
    number = math.nan if is_nan else float(value or 0)
    if number - number == 0:  # finite: NaN and infinities are not
        return repr(number)
    return json.dumps(metric_json(number))
