"""MLflow's ``runs/search``, on the run service's search (MLflow's filter grammar, plus OR)."""

from __future__ import annotations

import json
import math
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
    )
    inputs = services.run_inputs.of_runs([row.id for row in found.rows])
    runs = [_run_json(row, found, inputs.get(row.id)) for row in found.rows]
    page = {"runs": runs, "next_page_token": found.next_page_token}
    return Response(json.dumps(page, separators=(",", ":")), media_type="application/json")


_NO_INPUTS: dict[str, list[Any]] = {"dataset_inputs": [], "model_inputs": []}


def _run_json(row: Any, found: RunRows, inputs: RunInputsRead | None) -> dict[str, Any]:
    """``convert.run`` of the run, as JSON-ready dicts straight from the store's rows.

    A search answers up to 1,000 runs; three models per run (the service's, MLflow's, and
    FastAPI checking the answer) cost more than the query. tests/mlflow/test_logging_paths.py
    holds this to ``convert.run``'s output for the same runs."""
    tags = dict(found.details.tags.get(row.id, ()))
    creator = found.users.get(row.created_by)
    user = creator or tags.get(convert.USER_TAG, "")
    tags[convert.RUN_NAME_TAG] = row.name
    if row.parent_id:
        tags[convert.PARENT_TAG] = row.parent_id
    params = found.details.params.get(row.id, {})
    metrics = sorted(found.details.metrics.get(row.id, ()))
    return {
        "info": {
            "run_id": row.id,
            "run_uuid": row.id,
            "run_name": row.name,
            "experiment_id": row.experiment_id,
            "user_id": user,
            "status": convert.mlflow_status(row.status),
            "start_time": convert.ms(row.start_time),
            "end_time": convert.ms(row.end_time) if row.end_time else None,
            "artifact_uri": convert.artifact_uri(row.id),
            "lifecycle_stage": row.lifecycle_stage,
        },
        "data": {
            "metrics": [
                {
                    "key": key,
                    "value": metric_json(math.nan if is_nan else float(value or 0)),
                    "timestamp": timestamp,
                    "step": step,
                }
                for key, step, timestamp, value, is_nan in metrics
            ],
            "params": [{"key": k, "value": v} for k, v in sorted(params.items())],
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        },
        "inputs": _NO_INPUTS
        if inputs is None or not (inputs.datasets or inputs.models)
        else convert.run_inputs(inputs).model_dump(mode="json", by_alias=True),
    }
