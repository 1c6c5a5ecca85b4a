"""MLflow's ``runs/search``, on the run service's search (MLflow's filter grammar, plus OR)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.mlflow import convert
from shipyard.mlflow import schemas as m
from shipyard.mlflow.lookup import default_experiment
from shipyard.mlflow.paths import API_PREFIX

router = APIRouter(prefix=API_PREFIX + "/runs", route_class=GuardedRoute, tags=["mlflow"])


@router.post("/search", dependencies=[require(actions.JOBS_READ)])
def search_runs(
    workspace: str, body: m.SearchRuns, services: Services = Depends(get_services)
) -> m.SearchRunsResponse:
    view = convert.view_type(body.run_view_type, "run_view_type")
    experiment_ids = [
        default_experiment(services, workspace).id if e == convert.DEFAULT_EXPERIMENT_ID else e
        for e in body.experiment_ids
    ]
    text = (body.filter or "").strip()
    if view == "DELETED_ONLY":
        deleted = "attributes.lifecycle_stage = 'deleted'"
        text = f"({text}) AND {deleted}" if text else deleted
    page = services.runs.search(
        workspace,
        experiment_ids=experiment_ids,
        filter=text or None,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_deleted=view != "ACTIVE_ONLY",
    )
    return m.SearchRunsResponse(
        runs=[convert.run(r) for r in page.items], next_page_token=page.next_page_token
    )
